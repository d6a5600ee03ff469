"""One checker from every entry point: ``python -m tinyresnet.assign check A2`` in the release
folder, the ``tinyresnet check A2`` command of an editable install run there, and the notebook's
``check("A2")`` give the same friendly report for a syntax error, a loop at import time and a
deleted function; the release is found from the current folder first; a notebook shows the result
as a compact table."""
import pytest

from tinyresnet.assign.checker import check
from tinyresnet.cli import main

from .conftest import completed_release, run_module, untouched_submission

NORM = "tinyresnet/functional/norm.py"
RESNET = "tinyresnet/models/resnet.py"
SHORTCUT = "tinyresnet/models/shortcut.py"


@pytest.fixture(scope="module")
def broken(builds, tmp_path_factory):
    """An A2 release with the solution typed in, then broken three ways; the import time limit
    is cut to 2 s so that the loop costs little."""
    folder = completed_release(builds["A2"], tmp_path_factory.mktemp("broken") / "A2")
    config = folder / "assignment.toml"
    config.write_text(config.read_text().replace("time_limit_s = 10\n",
                                                 "time_limit_s = 10\nimport_time_limit_s = 2\n"))
    with open(folder / RESNET, "a") as f:
        f.write("\ndef half_written(:\n")
    with open(folder / SHORTCUT, "a") as f:
        f.write("\nwhile True:  # a loop left at module level\n    pass\n")
    text = (folder / NORM).read_text()
    (folder / NORM).write_text(text.replace("def batchnorm2d_backward(", "def bn_backward_old("))
    return folder


@pytest.fixture(scope="module")
def reports(broken):
    """{entry point: what it printed}."""
    module = run_module(["check", "A2"], broken)
    notebook = run_module(None, broken, code="from tinyresnet.assign import check\ncheck('A2')")
    return {"python -m tinyresnet.assign": (module.returncode, module.stdout, module.stderr),
            "notebook": (notebook.returncode, notebook.stdout, notebook.stderr)}


def test_every_entry_point_gives_the_same_friendly_report(broken, reports, monkeypatch, capsys):
    monkeypatch.chdir(broken)  # the tinyresnet command of an editable install, run in the release
    assert main(["check", "A2"]) == 0
    command = capsys.readouterr()
    for name, (status, out, err) in reports.items():
        assert status == 0 and err == "", (name, err)
        assert out == command.out, name
    text = command.out
    assert "Traceback" not in text
    assert f"{RESNET} cannot be compiled (SyntaxError at line" in text
    assert (f"importing {SHORTCUT} failed (CaseTimeout: time limit of 2 s exceeded while importing "
            f"your package") in text
    assert f"{NORM} lacks batchnorm2d_backward (deleted or renamed?)" in text
    assert "batchnorm_forward     15.00 / 15    ok" in text  # what still works keeps its points


def test_the_release_in_the_current_folder_comes_first(builds, tmp_path, monkeypatch, capsys):
    """On an editable install the repository's assignments/A2 exists too; a student in their
    release (or just above it) must get their own work checked."""
    folder = untouched_submission(builds["A2"], tmp_path / "A2")
    for cwd in (folder, tmp_path):
        monkeypatch.chdir(cwd)
        assert main(["check", "A2", "--part", "projection_shortcut"]) == 0
        out = capsys.readouterr().out
        assert "projection_shortcut    0.00 / 8     not implemented" in out, cwd
    monkeypatch.chdir(folder / "tinyresnet")
    assert main(["check", "A2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinyresnet check: error: no student release of A2 in ")
    assert "pass its folder (--dir FOLDER" in err and len(err.splitlines()) == 1


def test_a_notebook_shows_a_compact_table(builds, tmp_path, capsys):
    folder = untouched_submission(builds["A2"], tmp_path / "A2")
    result = check("A2", folder, parts=["batchnorm_forward", "projection_shortcut"])
    capsys.readouterr()
    assert repr(result) == "<A2 A2: 0 / 23, 0 of 2 parts ok>"
    assert repr(result.parts[0]) == "<part batchnorm_forward: 0 / 15, not implemented>"
    table = result._repr_html_()
    assert table.startswith("<table>") and table.endswith("</table>")
    assert table.count("<tr>") == 1 + 2 + 1  # header, the two parts, total
    assert "projection_shortcut" in table and "0 / 8" in table and "not implemented" in table
    assert len(table) < 2000 and "NotImplementedError" not in table


def test_check_and_grade_stay_functions_once_their_modules_are_loaded():
    # A submodule named like the package's function would replace it on first import, and a
    # notebook re-running `from tinyresnet.assign import check` would get a module.
    import tinyresnet.assign.checker  # noqa: F401
    import tinyresnet.assign.grader  # noqa: F401
    from tinyresnet.assign import check as check_fn, grade as grade_fn

    assert callable(check_fn) and callable(grade_fn)
