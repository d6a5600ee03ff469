"""The checker students run, and the command line."""
import hashlib
import json

from tinyresnet.assign.checker import check

from .conftest import completed_release, run_module, untouched_submission


def tree_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_check_on_the_untouched_release_points_to_the_notebook(builds, tmp_path, capsys):
    folder = untouched_submission(builds["A2"], tmp_path / "A2")
    before = tree_hash(folder)
    result = check("A2", folder)
    out = capsys.readouterr().out
    assert result.score == 0 and result.max_score == 80
    assert "batchnorm_forward" in out and "not implemented" in out and "section 2.1" in out
    assert "Hidden tests with other parameters are added at grading" in out
    assert tree_hash(folder) == before, "check must not modify the student's folder"


def test_check_of_a_finished_release_gives_full_public_marks(builds, tmp_path, capsys):
    folder = completed_release(builds["A2"], tmp_path / "A2")
    result = check("A2", folder)
    assert result.score == result.max_score
    assert all(c["visibility"] == "public" for p in result.parts for c in p.cases)
    assert "total" in capsys.readouterr().out


def test_command_line_check_in_the_release_folder(builds, tmp_path):
    folder = completed_release(builds["A1"], tmp_path / "A1")
    text = (folder / "tinyresnet/functional/activation.py").read_text()
    (folder / "tinyresnet/functional/activation.py").write_text(
        text + "\n\n_ref = relu_backward\n\n\ndef relu_backward(dy, cache):\n"
               "    return -_ref(dy, cache)\n")
    out = run_module(["check", "A1"], folder)
    assert out.returncode == 0, out.stderr
    assert "relu_backward" in out.stdout and "opposite sign" in out.stdout


def test_command_line_grade_writes_csv_feedback_and_gradescope(builds, tmp_path):
    subs = tmp_path / "subs"
    untouched_submission(builds["A2"], subs / "bob")
    out = run_module(["grade", "A2", str(subs), "--bundle", str(builds["A2"].instructor), "--out",
               str(tmp_path / "out"), "--gradescope"], tmp_path)
    assert out.returncode == 1, out.stderr  # graded and written, but a class of zeros
    assert "every submission scored 0" in out.stderr
    assert "bob: 0 / 80" in out.stdout
    results = json.loads((tmp_path / "out" / "gradescope" / "bob" / "results.json").read_text())
    assert results["score"] == 0 and len(results["tests"]) == 6
    assert {"name", "score", "max_score", "output", "visibility"} <= set(results["tests"][0])
    assert (tmp_path / "out" / "feedback" / "bob.txt").is_file()
    assert (tmp_path / "out" / "grades.csv").read_text().startswith("submission,batchnorm_forward")


def test_command_line_errors_are_one_clear_line(tmp_path):
    out = run_module(["build", "A9", "--out", str(tmp_path)], tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("python -m tinyresnet.assign build: error: assignment 'A9' not found")
    assert len(out.stderr.strip().splitlines()) == 1


def test_the_tinyresnet_command_forwards_assign_check_and_grade(builds, tmp_path, capsys):
    from tinyresnet.cli import main

    folder = completed_release(builds["A2"], tmp_path / "A2")
    assert main(["check", "A2", "--dir", str(folder), "--part", "projection_shortcut"]) == 0
    out = capsys.readouterr().out
    assert "projection_shortcut" in out and "8.00 / 8" in out
    assert main(["assign", "build", "A9", "--out", str(tmp_path)]) == 2
    assert "tinyresnet assign build: error: assignment 'A9' not found" in capsys.readouterr().err
