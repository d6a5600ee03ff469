"""Grading survives what students hand in: an infinite loop (the time limit, and the watchdog when
the alarm is blocked), a syntax error, a missing file, deleted or renamed functions, a module that
raises on import, a crash of the interpreter, a zip with a top folder.  Each costs only the parts
it touches, with a clear message, and the grading run itself never fails.  Grading is
deterministic, and hidden tests' source never reaches a student."""
import zipfile

import pytest

from tinyresnet.assign import runner
from tinyresnet.assign.grader import grade
from tinyresnet.assign.report import source_lines

from .conftest import mutate, solution_submission

ACTIVATION = "tinyresnet/functional/activation.py"
CONV = "tinyresnet/functional/conv.py"
POOL = "tinyresnet/functional/pool.py"
LINEAR = "tinyresnet/functional/linear.py"
LOSS = "tinyresnet/functional/loss.py"

CASES = {
    # name: (file, code appended, parts that lose everything, phrase in the feedback)
    # relu_backward's tests run relu_forward first, so they hit the loop as well
    "infinite_loop": (ACTIVATION, "\n\ndef relu_forward(x):\n    while True:\n        pass\n",
                      {"relu_forward", "relu_backward"},
                      "time limit of 1 s exceeded while running this case (an infinite loop, or "
                      "far too slow an implementation?) (at tinyresnet/functional/activation.py"),
    "alarm_blocked_loop": (ACTIVATION, (
        "\nimport signal as _signal\n\n\ndef relu_backward(dy, cache):\n"
        "    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGALRM})\n"
        "    while True:\n        pass\n"), {"relu_backward"}, "the grading process was killed"),
    "interpreter_exit": (LINEAR, "\nimport os as _os\n\n\ndef linear_backward(dy, cache):\n"
                                 "    _os._exit(3)\n", {"linear_backward"}, "died"),
    "import_time_error": (LOSS, "\nraise RuntimeError('half-finished edit')\n",
                          {"softmax_ce_forward", "softmax_ce_backward"},
                          "RuntimeError: half-finished edit"),
}


@pytest.fixture(scope="module")
def graded(builds, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setattr(runner, "_GRACE_S", 1.0)
    a1 = builds["A1"]
    root = tmp_path_factory.mktemp("robust")
    subs = root / "submissions"
    for name, (file, code, _, _) in CASES.items():
        mutate(solution_submission(a1, subs / name), file, code)
    broken = solution_submission(a1, subs / "syntax_error")
    (broken / POOL).write_text((broken / POOL).read_text() + "\ndef oops(:\n")
    missing = solution_submission(a1, subs / "missing_file")
    (missing / LINEAR).unlink()
    renamed = solution_submission(a1, subs / "renamed_function")
    (renamed / CONV).write_text((renamed / CONV).read_text().replace(
        "def conv2d_backward(dy, cache, input_grad=True):",
        "def conv2d_backward_v2(dy, cache, input_grad=True):"))
    deleted = solution_submission(a1, subs / "deleted_function")
    text = (deleted / ACTIVATION).read_text()
    (deleted / ACTIVATION).write_text(text[: text.index("def relu_backward")])
    leaky = solution_submission(a1, subs / "leaky")
    mutate(leaky, ACTIVATION, (
        "\nimport inspect as _inspect\n\n\ndef relu_backward(dy, cache):\n"
        "    frames = [f for f in _inspect.stack() if 'hidden' in f.filename]\n"
        "    raise ValueError(open(frames[0].filename).read() if frames else 'no hidden frame')\n"))
    zipped = solution_submission(a1, root / "zipped" / "alice-A1")
    with zipfile.ZipFile(subs / "alice.zip", "w") as z:
        for path in zipped.rglob("*.py"):
            z.write(path, "alice-A1/" + path.relative_to(zipped).as_posix())
    for twin in ("twin_a", "twin_b"):
        mutate(solution_submission(a1, subs / twin), CONV, CASES_DX_HALF)
    done = grade("A1", subs, bundle=a1.instructor, out_dir=root / "out", time_limit_s=1, jobs=2)
    results = {r.name: r for r in done.results}
    feedback = {n: (root / "out" / "feedback" / f"{n}.txt").read_text() for n in results}
    return results, feedback, a1


CASES_DX_HALF = """
_ref_conv2d_backward = conv2d_backward


def conv2d_backward(dy, cache):
    dx, dw, db = _ref_conv2d_backward(dy, cache)
    return 0.5 * dx, dw, db
"""


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def lost_parts(result):
    return {p.id for p in result.parts if not p.manual and p.score < p.points}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_broken_function_costs_only_its_parts(graded, name):
    results, feedback, _ = graded
    _, _, parts, phrase = CASES[name]
    result = results[name]
    assert lost_parts(result) == parts
    for part in parts:
        assert result.part(part).score == 0
    assert phrase in feedback[name]


def test_a_syntax_error_zeroes_that_file_with_a_note(graded):
    results, feedback, _ = graded
    result = results["syntax_error"]
    assert lost_parts(result) == {"maxpool_forward", "maxpool_backward"}
    assert "cannot be compiled (SyntaxError at line" in feedback["syntax_error"]


def test_a_missing_file_zeroes_its_parts_with_a_note(graded):
    results, feedback, _ = graded
    assert lost_parts(results["missing_file"]) == {"linear_forward", "linear_backward"}
    assert "tinyresnet/functional/linear.py is missing from the submission" in feedback["missing_file"]


@pytest.mark.parametrize("name, parts, function", [
    ("renamed_function", {"conv_backward"}, "conv2d_backward"),
    ("deleted_function", {"relu_backward"}, "relu_backward"),
])
def test_a_deleted_or_renamed_function_costs_its_part(graded, name, parts, function):
    results, feedback, _ = graded
    assert lost_parts(results[name]) == parts
    assert f"lacks {function} (deleted or renamed?)" in feedback[name]


def test_a_zip_with_a_top_folder_is_found_and_graded(graded):
    results, _, _ = graded
    assert results["alice"].score == results["alice"].max_score


def test_grading_is_deterministic(graded):
    results, feedback, _ = graded
    a, b = results["twin_a"], results["twin_b"]
    assert lost_parts(a) == {"conv_backward"}
    assert [p.score for p in a.parts] == [p.score for p in b.parts]
    assert feedback["twin_a"].replace("twin_a", "") == feedback["twin_b"].replace("twin_b", "")


def test_hidden_test_source_never_reaches_students(graded):
    results, feedback, a1 = graded
    secret = source_lines((a1.instructor / "tests" / "hidden_tests.py").read_text(),
                          (a1.instructor / "tests" / "public_tests.py").read_text())
    assert len(secret) > 50
    for name, text in feedback.items():
        leaked = [line for line in secret if line in text]
        assert not leaked, (name, leaked[:3])
    # the student who dumped the hidden test file into an exception message gets it redacted
    assert "[hidden]" in feedback["leaky"]
    assert lost_parts(results["leaky"]) == {"relu_backward"}
