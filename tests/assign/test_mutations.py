"""The mutation suite: known-wrong implementations lose points on the right part, with the right
diagnosis (see mutations.py for the catalogue).

Mutations of different files and parts are graded together, several per submission, so the suite
stays quick; a mutation's part is never touched by another mutation of its submission, so the
points it loses are its own.
"""
import pytest

from tinyresnet.assign.grade import grade

from .conftest import REDUCED, mutate, solution_submission
from .mutations import ALL


def test_the_catalogue_has_at_least_sixty_mutations_with_signatures():
    assert len(ALL) >= 60
    assert len({m.id for m in ALL}) == len(ALL)
    assert sum(m.signature is not None for m in ALL) >= 60


def pack(mutations):
    """Group mutations: no two in a group share a file or a part they may cost."""
    groups = []
    for m in mutations:
        touched = {m.part, *m.also}
        for group in groups:
            if all(o.file != m.file and not touched & {o.part, *o.also} for o in group):
                group.append(m)
                break
        else:
            groups.append([m])
    return groups


@pytest.fixture(scope="module")
def graded(builds, tmp_path_factory):
    """Grade every mutation of one assignment (once): {group name: result}, feedback, owner."""
    cache = {}

    def run(assignment):
        if assignment not in cache:
            root = tmp_path_factory.mktemp(f"mutants-{assignment}")
            submissions = root / "submissions"
            submissions.mkdir()
            owner, members = {}, {}
            for i, group in enumerate(pack([m for m in ALL if m.assignment == assignment])):
                name = f"group{i:02d}"
                submission = solution_submission(builds[assignment], submissions / name)
                for m in group:
                    mutate(submission, m.file, m.code)
                    owner[m.id] = name
                members[name] = group
            done = grade(assignment, submissions, bundle=builds[assignment].instructor,
                         out_dir=root / "out", overrides=REDUCED[assignment], jobs=2)
            results = {r.name: r for r in done.results}
            feedback = {n: (root / "out" / "feedback" / f"{n}.txt").read_text() for n in results}
            cache[assignment] = results, feedback, owner, members
        return cache[assignment]

    return run


def part_text(feedback, part_id):
    start = feedback.index(f"[{part_id}]")
    end = feedback.find("\n[", start + 1)
    return feedback[start:] if end < 0 else feedback[start:end]


@pytest.mark.parametrize("m", ALL, ids=lambda m: m.id)
def test_mutation_loses_points_on_its_part_with_its_diagnosis(graded, m):
    results, feedback, owner, members = graded(m.assignment)
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


@pytest.mark.parametrize("assignment", ["A1", "A2", "A3"])
def test_mutations_cost_no_other_part(graded, assignment):
    results, _, _, members = graded(assignment)
    for name, result in results.items():
        allowed = {p for m in members[name] for p in (m.part, *m.also)}
        lost = {p.id for p in result.parts if not p.manual and p.score < p.points}
        assert lost <= allowed, f"{name} ({[m.id for m in members[name]]}) lost {lost - allowed}"
