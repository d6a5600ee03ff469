"""Written answers: the tagged answer cells of a submitted notebook, for the instructor to read.

The convention (the one the notebooks already follow): each written question is followed by a
markdown cell whose metadata carries the tag ``answer`` (Jupyter: View > Cell Toolbar > Tags),
released as::

    **Your answer to question 2:**

    _write here_

A student writes below the first line (or in new cells right after it).  The grader matches each
answer cell of the release notebook with the submitted one by cell id (nbformat 4.5), else by its
first line; it takes the cell's text without the release's own lines (the heading and the
placeholder), then any markdown cells the student added directly after it.  An answer is counted
as given when some text remains.  Nothing here grades prose: it collects it, one readable file per
student, and counts answered questions for the CSV.

Notebooks are read with nbformat (``pip install tinyresnet[assign]``; Jupyter brings it).
"""
import re
from dataclasses import dataclass

__all__ = ["ANSWER_TAG", "Answer", "Answers", "release_questions", "collect", "answers_markdown"]

ANSWER_TAG = "answer"
_QUESTION = re.compile(r"^\*\*Question (\d+)\.\*\*", re.MULTILINE)
_NUMBER = re.compile(r"question\s+(\d+)", re.IGNORECASE)


@dataclass
class Answer:
    """One written question: its heading and text (from the release), the student's answer."""

    heading: str
    question: str
    text: str

    @property
    def given(self):
        return bool(self.text.strip())


@dataclass
class Answers:
    """The answers of one submission; ``note`` says why none could be read (no notebook, ...)."""

    items: list
    note: str = ""

    @property
    def answered(self):
        return sum(a.given for a in self.items)

    @property
    def total(self):
        return len(self.items)

    def summary(self):
        """'3 of 4' (the CSV's completion column)."""
        return f"{self.answered} of {self.total}"


def _nbformat():
    try:
        import nbformat
    except ImportError as err:
        raise ImportError("collecting written answers needs nbformat: pip install nbformat "
                          "(or tinyresnet[assign])") from err
    return nbformat


def _read(data):
    nbformat = _nbformat()
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return nbformat.reads(text, as_version=4)


def _lines(text):
    return [line.strip() for line in text.splitlines() if line.strip()]


def _first_line(text):
    lines = _lines(text)
    return lines[0] if lines else ""


def _is_answer(cell):
    return ANSWER_TAG in cell.get("metadata", {}).get("tags", [])


def release_questions(notebook):
    """[(cell id, heading, the release cell's lines, question text)] of a release notebook
    (text or bytes), in order.  The question text is the ``**Question N.**`` paragraph the
    heading's number points to, or '' when there is none."""
    nb = _read(notebook)
    paragraphs = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not _is_answer(cell):
            for block in re.split(r"\n\s*\n", cell.source):
                match = _QUESTION.match(block.strip())
                if match:
                    paragraphs.setdefault(match.group(1), block.strip())
    out = []
    for cell in nb.cells:
        if _is_answer(cell):
            heading = _first_line(cell.source)
            number = _NUMBER.search(heading)
            out.append((cell.get("id"), heading, set(_lines(cell.source)),
                        paragraphs.get(number.group(1), "") if number else ""))
    return out


def collect(release_notebook, submitted, note=""):
    """The Answers of a submitted notebook (bytes, or None when the submission has none).

    release_notebook : the release's notebook (text or bytes): which answers are expected
    note : why ``submitted`` is None (kept on the result)
    """
    expected = release_questions(release_notebook)
    empty = [Answer(h, q, "") for _, h, _, q in expected]
    if submitted is None:
        return Answers(empty, note)
    try:
        nb = _read(submitted)
    except Exception as err:  # nbformat raises several kinds for a damaged file
        return Answers(empty, f"the notebook cannot be read ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]})")
    release = _read(release_notebook).cells
    release_ids = {c.get("id") for c in release if c.get("id")}
    release_sources = {c.source.strip() for c in release}

    def added(cell):  # a cell the student inserted: an id (or, without ids, a text) not released
        return (cell.get("id") not in release_ids if cell.get("id")
                else cell.source.strip() not in release_sources)

    items = []
    for cell_id, heading, release_lines, question in expected:
        index = _find(nb.cells, cell_id, heading)
        if index is None:
            items.append(Answer(heading, question, ""))
            continue
        kept = [line for line in nb.cells[index].source.splitlines()
                if line.strip() not in release_lines]
        texts = ["\n".join(kept).strip()]
        for cell in nb.cells[index + 1:]:
            if cell.cell_type != "markdown" or _is_answer(cell) or not added(cell):
                break
            texts.append(cell.source.strip())
        items.append(Answer(heading, question, "\n\n".join(t for t in texts if t)))
    return Answers(items)


def _find(cells, cell_id, heading):
    """The index of the submitted answer cell: same id, else same first line, else None."""
    tagged = [i for i, c in enumerate(cells) if _is_answer(c)]
    for i in tagged:
        if cell_id and cells[i].get("id") == cell_id:
            return i
    for i in tagged:
        if heading and _first_line(cells[i].source) == heading:
            return i
    return None


def answers_markdown(name, assignment, answers):
    """The instructor's file of one student's written answers (markdown)."""
    manual = sum(p.points for p in assignment.parts if p.manual)
    lines = [f"# {assignment.id} written answers: {name}", "",
             f"{answers.summary()} questions answered."
             + (f" The written part ({manual:g} points) is graded by hand; nothing here is graded "
                f"automatically." if manual else ""), ""]
    if answers.note:
        lines += [f"Note: {answers.note}", ""]
    for i, answer in enumerate(answers.items, 1):
        number = _NUMBER.search(answer.heading)
        lines += [f"## Question {number.group(1)}" if number else
                  f"## {answer.heading.strip('*: ') or f'Answer {i}'}", ""]
        if answer.question:
            lines += ["> " + line if line else ">" for line in answer.question.splitlines()]
            lines.append("")
        lines += [answer.text if answer.given else "_(no answer)_", ""]
    return "\n".join(lines)
