"""The grader never reports a silent success: a relative bundle path grades like an absolute one;
a reference solution that would lose points here stops the run; a missing, unreadable, incomplete
or foreign bundle, an unknown assignment, a missing or empty submissions folder are one line and
exit status 2; an unreadable zip and a class of zeros are graded, written, and exit status 1."""
import json
import os
import shutil

import pytest

from tinyresnet.assign.cli import main

from .conftest import mutate, solution_submission, untouched_submission

PROG = "python -m tinyresnet.assign grade"


def grade_here(args, capsys):
    """(exit status, stdout, stderr) of ``grade ARGS`` run in the current folder."""
    status = main(["grade"] + args)
    out = capsys.readouterr()
    return status, out.out, out.err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_relative_paths_grade_as_absolute_ones_and_a_bad_zip_is_named(builds, tmp_path,
                                                                      monkeypatch, capsys):
    a2 = builds["A2"]
    monkeypatch.chdir(tmp_path)
    solution_submission(a2, tmp_path / "subs" / "alice")
    untouched_submission(a2, tmp_path / "subs" / "bob")
    (tmp_path / "subs" / "carol.zip").write_bytes(b"PK\x03\x04 not really a zip")
    bundle = os.path.relpath(a2.instructor, tmp_path)
    assert not os.path.isabs(bundle)
    status, out, err = grade_here(["A2", "subs/", "--bundle", bundle, "--out", "grades"], capsys)
    assert "reference solution: 80 / 80" in out
    assert "alice: 80 / 80" in out and "bob: 0 / 80" in out and "carol: 0 / 80" in out
    assert status == 1
    assert one_line(err) == (f"{PROG}: 1 submission could not be read and got 0: carol.zip is "
                             f"not a readable zip file (damaged, or not a zip)")
    rows = (tmp_path / "grades" / "grades.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["alice", "bob", "carol"]
    assert "carol.zip is not a readable zip file" in rows[3]


def test_a_class_of_zeros_is_written_but_not_silent(builds, tmp_path, capsys):
    a2 = builds["A2"]
    untouched_submission(a2, tmp_path / "subs" / "bob")
    status, out, err = grade_here(["A2", str(tmp_path / "subs"), "--bundle", str(a2.instructor),
                                   "--out", str(tmp_path / "grades")], capsys)
    assert status == 1
    assert one_line(err).startswith(
        f"{PROG}: every submission scored 0 (1 graded, though the reference gets full marks "
        f"here): look at the feedback in")
    assert (tmp_path / "grades" / "grades.csv").read_text().splitlines()[1].startswith("bob,0,")


def test_a_reference_that_loses_points_here_stops_the_run(builds, tmp_path, capsys):
    """What an AVX-512 host did to A3's gradient check, played by a bundle whose reference
    batch-norm backward is off by a factor: nothing is graded, one line says why."""
    bundle = tmp_path / "bundle"
    shutil.copytree(builds["A2"].instructor, bundle)
    mutate(bundle / "solution", "tinyresnet/functional/norm.py", (
        "_reference_backward = batchnorm2d_backward\n\n\n"
        "def batchnorm2d_backward(dy, cache):\n"
        "    dx, dgamma, dbeta = _reference_backward(dy, cache)\n"
        "    return 0.5 * dx, dgamma, dbeta\n"))
    solution_submission(builds["A2"], tmp_path / "subs" / "alice")
    status, out, err = grade_here(["A2", str(tmp_path / "subs"), "--bundle", str(bundle),
                                   "--out", str(tmp_path / "grades")], capsys)
    assert status == 2 and out == ""
    line = one_line(err)
    assert line.startswith(f"{PROG}: error: the reference solution scores ")
    assert "in this environment (A2 part batchnorm_backward: " in line
    assert "fix the environment or the bundle before grading a class" in line
    assert not (tmp_path / "grades" / "grades.csv").exists()
    assert "batchnorm_backward" in (tmp_path / "grades" / "reference.txt").read_text()


def broken_bundles(a2, root):
    """{case: (bundle path, phrase of the error line)} of bundles the grader must refuse."""
    cases = {"missing": (root / "nowhere", "no such folder")}
    cases["not_a_bundle"] = (a2.student, "is not an instructor bundle (no manifest.json)")
    bad = root / "bad-manifest"
    bad.mkdir()
    (bad / "manifest.json").write_text("{ not json")
    cases["unreadable"] = (bad, "manifest.json is unreadable (JSONDecodeError")
    incomplete = root / "incomplete"
    shutil.copytree(a2.instructor, incomplete)
    (incomplete / "tests" / "reference_hidden.npz").unlink()
    cases["incomplete"] = (incomplete, "is incomplete: tests/reference_hidden.npz missing")
    foreign = root / "foreign"
    shutil.copytree(a2.instructor, foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    (foreign / "manifest.json").write_text(json.dumps(dict(manifest, assignment="A1")))
    cases["another_assignment"] = (foreign, "is assignment A1's, not A2's")
    return cases


@pytest.fixture(scope="module")
def bundles(builds, tmp_path_factory):
    return broken_bundles(builds["A2"], tmp_path_factory.mktemp("bundles"))


@pytest.mark.parametrize("case", ["missing", "not_a_bundle", "unreadable", "incomplete",
                                  "another_assignment"])
def test_a_bad_bundle_is_one_line_and_exit_status_2(builds, bundles, case, tmp_path, capsys):
    bundle, phrase = bundles[case]
    solution_submission(builds["A2"], tmp_path / "subs" / "alice")
    status, out, err = grade_here(["A2", str(tmp_path / "subs"), "--bundle", str(bundle),
                                   "--out", str(tmp_path / "grades")], capsys)
    assert status == 2
    line = one_line(err)
    assert line.startswith(f"{PROG}: error: ") and phrase in line, line
    assert not (tmp_path / "grades").exists()


def test_a_wrong_assignment_id_is_one_line(builds, tmp_path, capsys):
    (tmp_path / "subs").mkdir()
    status, _, err = grade_here(["A9", str(tmp_path / "subs"), "--out", str(tmp_path / "g")],
                                capsys)
    assert status == 2
    assert one_line(err).startswith(f"{PROG}: error: assignment 'A9' not found")
    status, _, err = grade_here(["A1", str(tmp_path / "subs"), "--bundle",
                                 str(builds["A2"].instructor)], capsys)
    assert status == 2 and "is assignment A2's, not A1's" in one_line(err)


@pytest.mark.parametrize("make, phrase", [
    (lambda p: p.mkdir(), "no submissions in"),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("no zips here")), "no submissions in"),
    (lambda p: None, "no such file or folder"),
])
def test_no_submissions_is_one_line_and_exit_status_2(builds, tmp_path, capsys, make, phrase):
    make(tmp_path / "subs")
    status, _, err = grade_here(["A2", str(tmp_path / "subs"), "--bundle",
                                 str(builds["A2"].instructor), "--out", str(tmp_path / "g")],
                                capsys)
    assert status == 2
    line = one_line(err)
    assert line.startswith(f"{PROG}: error: ") and phrase in line, line
