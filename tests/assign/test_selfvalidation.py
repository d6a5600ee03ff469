"""Self-validation: the reference solution earns full marks on every assignment, and the untouched
student release earns zero on every graded part, only because its parts are not implemented
(nothing else breaks: no errors, no notes, the package imports)."""
import pytest

from tinyresnet.assign.grader import grade
from tinyresnet.assign.release import build

from .conftest import REDUCED, solution_submission, untouched_submission


@pytest.fixture(scope="module")
def graded(builds, tmp_path_factory):
    cache = {}

    def run(assignment):
        if assignment not in cache:
            root = tmp_path_factory.mktemp(f"selfcheck-{assignment}")
            solution_submission(builds[assignment], root / "submissions" / "solution")
            untouched_submission(builds[assignment], root / "submissions" / "untouched")
            # the solution is graded as a submission here: the grader's own reference check
            # would only repeat it
            done = grade(assignment, root / "submissions", bundle=builds[assignment].instructor,
                         out_dir=root / "out", overrides=REDUCED[assignment], jobs=2,
                         reference_check=False)
            cache[assignment] = {r.name: r for r in done.results}, root / "out"
        return cache[assignment]

    return run


@pytest.mark.parametrize("assignment", ["A1", "A2", "A3", "A4"])
def test_reference_solution_gets_full_marks(graded, assignment):
    results, _ = graded(assignment)
    solution = results["solution"]
    lost = {p.id: [c["message"] for c in p.cases if c["status"] != "pass"]
            for p in solution.parts if not p.manual and p.score < p.points}
    assert not lost, lost
    assert solution.score == solution.max_score > 0
    assert not solution.notes


@pytest.mark.parametrize("assignment", ["A1", "A2", "A3", "A4"])
def test_untouched_release_gets_zero_on_every_graded_part_and_only_for_that(graded, assignment):
    results, out = graded(assignment)
    untouched = results["untouched"]
    assert untouched.score == 0
    assert not untouched.notes
    for part in untouched.parts:
        if part.manual:
            continue
        assert part.score == 0, part.id
        statuses = {c["status"] for c in part.counted}
        assert statuses <= {"not_implemented", "blocked"}, (part.id, statuses)
        for case in part.counted:
            assert "is not implemented yet" in case["message"], case
    feedback = (out / "feedback" / "untouched.txt").read_text()
    assert "section" in feedback and "not implemented" in feedback


def test_grades_csv_lists_every_part(graded):
    _, out = graded("A1")
    lines = (out / "grades.csv").read_text().splitlines()
    assert lines[0].startswith("submission,conv_forward,conv_backward")
    assert lines[0].endswith("total,max,answered,notes")
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert rows["solution"][-4:-2] == ["90", "90"] and rows["untouched"][-4] == "0"


def test_a4_feedback_says_which_data_set_it_trained_on(graded):
    _, out = graded("A4")
    feedback = (out / "feedback" / "solution.txt").read_text()
    train = feedback[feedback.index("[train]"):]
    assert "note: trained on the built-in 8x8 digits (no CIFAR-10 found" not in train  # reduced
    assert "note: trained on the built-in 8x8 digits" in train
    assert "held-out accuracy" in train


@pytest.mark.slow
def test_full_a3_reference_gets_full_marks_with_the_stated_accuracy(tmp_path):
    """The real A3 configuration: ResNet-18/34/50 structures and gradient check, and 4 epochs of
    training to the stated 93% on the digits (about a minute)."""
    done = build("A3", tmp_path / "build")
    solution_submission(done, tmp_path / "subs" / "solution")
    run = grade("A3", tmp_path / "subs", bundle=done.instructor, out_dir=tmp_path / "out",
                reference_check=False)
    result = run.results[0]
    assert result.score == result.max_score, (tmp_path / "out" / "feedback" / "solution.txt").read_text()
    assert all(c["status"] == "pass" for p in result.parts for c in p.cases)  # nothing skipped


@pytest.mark.slow
def test_a4_reference_trains_on_the_cifar10_subset_when_present(tmp_path, monkeypatch):
    """A4's real configuration: the training part finds CIFAR-10 and says so in the feedback."""
    from .test_a4 import cifar10_root

    root = cifar10_root()
    if root is None:
        pytest.skip("no CIFAR-10 copy here (set TINYRESNET_CIFAR10)")
    monkeypatch.setenv("TINYRESNET_CIFAR10", str(root))
    done = build("A4", tmp_path / "build")
    solution_submission(done, tmp_path / "subs" / "solution")
    run = grade("A4", tmp_path / "subs", bundle=done.instructor, out_dir=tmp_path / "out")
    feedback = (tmp_path / "out" / "feedback" / "solution.txt").read_text()
    assert run.results[0].score == run.results[0].max_score, feedback
    assert "trained on a CIFAR-10 subset" in feedback
