"""Grade every planted mutation of the assignments and write the mutation table.

    python scripts/mutation_table.py [--out docs/assignments-mutations.md] [--jobs 2]

Each mutation of ``tests/assign/mutations.py`` (a known student bug, written as code) is laid onto
the reference solution and graded as a submission (several mutations of different files and parts
share a submission), in the reduced configuration the tests use (A3: no ImageNet-size networks;
A3 and A4: one epoch of training on the digits).  The table gives, per mutation, the part it
targets, the points that part lost, the diagnosis the feedback gave (its bug signature and the
first line of its message), and whether that is the expected diagnosis; then the diagnosed share.
The page is written atomically; the command exits non-zero when a mutation kept all its points.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.assign.conftest import REDUCED  # noqa: E402
from tests.assign.mutations import ALL, grade_mutations  # noqa: E402
from tinyresnet.assign.release import build  # noqa: E402

HEADER = """# Assignments: the mutation table

Every row is a known student bug, planted in the reference solution (`tests/assign/mutations.py`)
and graded like a submission. *Points lost* are those of the part the bug is in (a bug may cost
other parts that run the same code as well); *diagnosis* is the bug signature the feedback named
and the first line of what it told the student; *diagnosed* says whether that is the diagnosis
the mutation expects. Graded in the reduced configuration of the tests (A3: no ImageNet-size
networks; A3 and A4: one epoch of training on the digits).

Regenerate with `python scripts/mutation_table.py` (a few minutes on two cores); the same
mutations are asserted by `tests/assign/test_mutations.py` (one per kind of bug by default, all of
them with `-m slow`).

"""


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def diagnosis_of(part, expected):
    """(signature, first line of its explanation) of the failing case that shows ``expected``,
    else of the first failing case."""
    failing = [c for c in part.counted if c["status"] != "pass"]
    chosen = next((c for c in failing if c.get("signature") == expected), None)
    chosen = chosen or (failing[0] if failing else None)
    if chosen is None:
        return None, ""
    message = chosen.get("message", "")
    lines = message.splitlines()
    explanation = next((line.split("diagnosis:", 1)[1].strip() for line in lines
                        if "diagnosis:" in line), lines[0] if lines else "")
    if len(explanation) > 220:
        explanation = explanation[:217] + "..."
    return chosen.get("signature"), explanation


def table(jobs):
    rows, kept = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for assignment in sorted({m.assignment for m in ALL}):
            mutations = [m for m in ALL if m.assignment == assignment]
            done = build(assignment, Path(tmp) / "build", overrides=REDUCED[assignment])
            results, _, owner, _ = grade_mutations(assignment, mutations, done,
                                                   Path(tmp) / assignment,
                                                   REDUCED[assignment], jobs=jobs)
            for m in mutations:
                part = results[owner[m.id]].part(m.part)
                lost = part.points - part.score
                if lost <= 0:
                    kept.append(m.id)
                signature, explanation = diagnosis_of(part, m.signature)
                rows.append((m, part, lost, signature, explanation,
                             m.signature is None or signature == m.signature))
    return rows, kept


def render(rows):
    lines = ["| bug (mutation) | assignment | part | points lost | diagnosis given | diagnosed |",
             "|---|---|---|---|---|---|"]
    for m, part, lost, signature, explanation, ok in rows:
        given = f"`{signature}`: {explanation}" if signature else f"none: {explanation}"
        lines.append(f"| `{m.id}` | {m.assignment} | {m.part} | {lost:g} / {part.points:g} | "
                     f"{cell(given)} | {'yes' if ok else 'no'} |")
    diagnosed = sum(ok for *_, ok in rows)
    named = sum(signature is not None for _, _, _, signature, _, _ in rows)
    by = {}
    for m, *_, ok in rows:
        by.setdefault(m.assignment, [0, 0])
        by[m.assignment][0] += ok
        by[m.assignment][1] += 1
    summary = [f"**Diagnosed share: {diagnosed} of {len(rows)} mutations "
               f"({diagnosed / len(rows):.0%})** get the diagnosis they expect; {named} of "
               f"{len(rows)} get a named bug signature; every one loses points on its part.",
               "",
               "| assignment | mutations | diagnosed |", "|---|---|---|"]
    summary += [f"| {a} | {n} | {d} |" for a, (d, n) in sorted(by.items())]
    return HEADER + "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "assignments-mutations.md"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    rows, kept = table(args.jobs)
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(render(rows), encoding="utf-8")
    os.replace(partial, out)
    print(f"{out}: {len(rows)} mutations")
    if kept:
        print(f"mutation_table: these mutations kept all their points: {kept}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
