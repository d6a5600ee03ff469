"""Written answers: the answer cells (tag ``answer``) of each submitted notebook are collected into
one readable file per student and a completion column of the CSV; nothing grades the prose."""
import zipfile

import nbformat
import pytest

from tinyresnet.assign.answers import collect
from tinyresnet.assign.grader import grade

from .conftest import solution_submission, untouched_submission


def release_notebook(build_):
    return (build_.student / build_.assignment.notebook).read_text()


def answer(nb, number, text):
    """Write ``text`` under the first line of the answer cell of question ``number``."""
    cell = next(c for c in nb.cells if "answer" in c.metadata.get("tags", [])
                and f"question {number}:" in c.source)
    cell.source = cell.source.splitlines()[0] + "\n\n" + text


def filled(build_, answers, added_after=None):
    """The release notebook with some answers written (as nbformat would save it)."""
    nb = nbformat.reads(release_notebook(build_), as_version=4)
    for number, text in answers.items():
        answer(nb, number, text)
    if added_after is not None:  # a student who answers in a new cell below the answer cell
        number, text = added_after
        index = next(i for i, c in enumerate(nb.cells) if f"question {number}:" in c.source)
        nb.cells.insert(index + 1, nbformat.v4.new_markdown_cell(text))
    return nbformat.writes(nb)


def test_the_release_notebook_has_its_answer_cells_and_none_is_answered(builds):
    for name, total in (("A1", 5), ("A2", 4)):
        found = collect(release_notebook(builds[name]), release_notebook(builds[name]).encode())
        assert (found.answered, found.total) == (0, total), name
        assert all(a.question.startswith("**Question ") for a in found.items), name


def test_answers_are_matched_by_cell_id_else_by_heading(builds):
    a2 = builds["A2"]
    text = filled(a2, {1: "The two terms remove the mean of dy and its part along x_hat."},
                  added_after=(3, "In training mode the batch **couples** the images."))
    found = collect(release_notebook(a2), text.encode())
    assert found.summary() == "2 of 4"
    assert found.items[0].text == "The two terms remove the mean of dy and its part along x_hat."
    assert found.items[2].text == "In training mode the batch **couples** the images."
    # a notebook saved without cell ids (nbformat 4.4) is matched by the answer cells' first line
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4
    without_ids = collect(release_notebook(a2), nbformat.writes(nb).encode())
    assert [a.text for a in without_ids.items][:2] == [a.text for a in found.items][:2]


def test_a_damaged_or_missing_notebook_is_a_note_not_a_crash(builds):
    a2 = builds["A2"]
    assert "cannot be read" in collect(release_notebook(a2), b"{ not a notebook").note
    missing = collect(release_notebook(a2), None, "no A2.ipynb in the submission")
    assert missing.summary() == "0 of 4" and missing.note == "no A2.ipynb in the submission"


@pytest.fixture(scope="module")
def graded(builds, tmp_path_factory):
    """Three students: alice (a folder, two answers), bob (a zip with a top folder, a notebook
    grown past 2 MB by its outputs and renamed by the browser), carol (no notebook)."""
    a2 = builds["A2"]
    root = tmp_path_factory.mktemp("answers")
    subs = root / "subs"
    alice = solution_submission(a2, subs / "alice")
    (alice / "A2.ipynb").write_text(filled(a2, {1: "Chain rule through mu and var.",
                                                4: "The block is the identity at first."}))
    bob = untouched_submission(a2, root / "bob-A2")
    nb = nbformat.reads(filled(a2, {2: "The +1 carries dL/dout' to x unchanged."}), as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 3_000_000)]
    (bob / "A2.ipynb").unlink()
    (bob / "A2 (1).ipynb").write_text(nbformat.writes(nb))
    with zipfile.ZipFile(subs / "bob.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(bob.rglob("*")):
            if path.is_file():
                z.write(path, "bob-A2/" + path.relative_to(bob).as_posix())
    solution_submission(a2, subs / "carol")
    run = grade("A2", subs, bundle=a2.instructor, out_dir=root / "out", jobs=2,
                reference_check=False)
    return run, root / "out"


def test_each_student_gets_a_readable_answers_file(graded):
    run, out = graded
    text = (out / "answers" / "alice.md").read_text()
    assert text.startswith("# A2 written answers: alice\n\n2 of 4 questions answered. The written "
                           "part (20 points) is graded by hand")
    assert "## Question 1\n\n> **Question 1.** Derive the compact form" in text
    assert "Chain rule through mu and var." in text and "_(no answer)_" in text
    assert "_write here_" not in text
    bob = (out / "answers" / "bob.md").read_text()
    assert "The +1 carries dL/dout' to x unchanged." in bob and "1 of 4" in bob
    carol = (out / "answers" / "carol.md").read_text()
    assert "0 of 4" in carol and "Note: no A2.ipynb in the submission" in carol


def test_the_csv_has_a_completion_column_and_feedback_says_what_was_collected(graded):
    run, out = graded
    rows = [line.split(",") for line in (out / "grades.csv").read_text().splitlines()]
    column = rows[0].index("answered")
    assert {r[0]: r[column] for r in rows[1:]} == {"alice": "2 of 4", "bob": "1 of 4",
                                                   "carol": "0 of 4"}
    assert "no A2.ipynb in the submission" in rows[3][-1]
    feedback = (out / "feedback" / "alice.txt").read_text()
    assert "written answers collected for grading by hand: 2 of 4" in feedback
    assert {r.name: r.score for r in run.results} == {"alice": 80, "bob": 0, "carol": 80}
