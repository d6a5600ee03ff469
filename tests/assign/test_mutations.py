"""The mutation suite: known-wrong implementations lose points on the right part, with the right
diagnosis (see mutations.py for the catalogue).

Mutations of different files and parts are graded together, several per submission, so the suite
stays quick; a mutation's part is never touched by another mutation of its submission, so the
points it loses are its own.  The default run grades one mutation per kind of bug
(``mutations.DEFAULT``); the whole catalogue runs with the slow tests, and
``scripts/mutation_table.py`` writes its table to docs/assignments-mutations.md.
"""
import shutil

import pytest

from .conftest import REDUCED, mutate
from .mutations import ALL, DEFAULT, grade_mutations


def test_the_catalogue_has_at_least_sixty_mutations_with_signatures():
    assert len(ALL) >= 60
    assert len({m.id for m in ALL}) == len(ALL)
    assert sum(m.signature is not None for m in ALL) >= 60
    assert DEFAULT <= {m.id for m in ALL}
    assert {m.assignment for m in ALL if m.id in DEFAULT} == {"A1", "A2", "A3", "A4"}


@pytest.fixture(scope="module")
def graded(builds, tmp_path_factory):
    """Grade the chosen mutations of one assignment (once per choice): results, feedback, owner,
    members (see mutations.grade_mutations)."""
    cache = {}

    def run(assignment, everything):
        key = assignment, everything
        if key not in cache:
            chosen = [m for m in ALL if m.assignment == assignment
                      and (everything or m.id in DEFAULT)]
            root = tmp_path_factory.mktemp(f"mutants-{assignment}")
            cache[key] = grade_mutations(assignment, chosen, builds[assignment], root,
                                         REDUCED[assignment])
        return cache[key]

    return run


def part_text(feedback, part_id):
    start = feedback.index(f"[{part_id}]")
    end = feedback.find("\n[", start + 1)
    return feedback[start:] if end < 0 else feedback[start:end]


CASES = [pytest.param(m, id=m.id, marks=() if m.id in DEFAULT else pytest.mark.slow) for m in ALL]


@pytest.mark.parametrize("m", CASES)
def test_mutation_loses_points_on_its_part_with_its_diagnosis(graded, m):
    results, feedback, owner, members = graded(m.assignment, m.id not in DEFAULT)
    result = results[owner[m.id]]
    part = result.part(m.part)
    assert part.score < part.points, f"{m.id}: part {m.part} kept all its points"
    failing = [c for c in part.counted if c["status"] != "pass"]
    assert all(c["status"] == "fail" for c in failing), (
        f"{m.id}: a wrong answer must be a diagnosed failure, not a crash: {failing}")
    if m.signature is not None:
        signatures = {c.get("signature") for c in failing}
        assert m.signature in signatures, f"{m.id}: diagnoses {signatures}, expected {m.signature}"
    assert m.message in part_text(feedback[owner[m.id]], m.part), (
        f"{m.id}: {m.message!r} not in\n{part_text(feedback[owner[m.id]], m.part)}")


@pytest.mark.parametrize("everything", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["default", "all"])
@pytest.mark.parametrize("assignment", ["A1", "A2", "A3", "A4"])
def test_mutations_cost_no_other_part(graded, assignment, everything):
    results, _, _, members = graded(assignment, everything)
    for name, result in results.items():
        allowed = {p for m in members[name] for p in (m.part, *m.also)}
        lost = {p.id for p in result.parts if not p.manual and p.score < p.points}
        assert lost <= allowed, f"{name} ({[m.id for m in members[name]]}) lost {lost - allowed}"


@pytest.mark.parametrize("assignment, mutation_id, part", [
    ("A2", "bn_backward_no_mean_term", "batchnorm_backward"),
    ("A1", "conv_col2im_stride_one", "conv_backward"),
])
def test_the_students_checker_names_the_bug(builds, tmp_path, assignment, mutation_id, part):
    """The public tests alone (what `check` runs) diagnose the bugs the issue reported as
    'no known bug signature matches' and as a raw col2im ValueError."""
    from tinyresnet.assign.checker import check

    release = tmp_path / assignment
    shutil.copytree(builds[assignment].student, release)
    shutil.copytree(builds[assignment].instructor / "solution", release, dirs_exist_ok=True)
    m = next(m for m in ALL if m.id == mutation_id)
    mutate(release, m.file, m.code)
    result = check(assignment, folder=release, parts=[part], quiet=True)
    failing = [c for c in result.part(part).counted if c["status"] != "pass"]
    assert failing and all(c["status"] == "fail" for c in failing), failing
    assert m.signature in {c.get("signature") for c in failing}
    assert "no known bug signature matches" not in " ".join(c["message"] for c in failing)
