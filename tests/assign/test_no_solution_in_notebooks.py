"""No graded solution appears in a shipped notebook.

The library is the reference solution: the lines between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` are what students write.  A notebook may derive the math and call the library,
or show another formulation (loops, the staged backward), but it must not hold a graded region's
code.  A region leaks when, comments and whitespace removed, its whole body appears in one code
cell, or any ``WINDOW`` consecutive lines of it do (a copy with one line changed still leaks).
"""
import io
import json
import keyword
import tokenize

import pytest

from tinyresnet.assign.config import list_assignments, load_assignment
from tinyresnet.assign.markers import scan_package
from tinyresnet.assign.release import package_root

ROOT = package_root()
WINDOW = 3
SHARE = 0.5
MIN_CHARS = 8
NOTEBOOKS = sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "docs").rglob("*.ipynb"),
                    *(ROOT / "assignments").rglob("*.ipynb")])


def normalise(lines):
    """Code lines as token strings: no comments, blank lines or whitespace, and every plain
    variable name replaced by ``_`` (so spacing or renaming ``F`` to ``F_`` cannot hide a copy).
    Attribute and called names (``.reshape``, ``im2col(``) are kept: they carry the method."""
    out = []
    for line in lines:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
        except (tokenize.TokenError, IndentationError, SyntaxError):
            tokens = []
        words, previous = [], None
        for index, tok in enumerate(tokens):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
                continue
            text = tok.string
            following = tokens[index + 1].string if index + 1 < len(tokens) else ""
            if tok.type == tokenize.NAME and following == "." and index + 3 < len(tokens) \
                    and tokens[index + 3].string == "(":
                continue  # F.im2col( reads as im2col(, x.reshape( as .reshape(
            if (tok.type == tokenize.NAME and not keyword.iskeyword(text) and previous != "."
                    and following != "("):
                text = "_"
            words.append(text)
            previous = tok.string
        if words:
            out.append("".join(words))
    return out


def graded_regions():
    """{region id: normalised body} for every region some assignment grades."""
    graded = {r for name in list_assignments(ROOT / "assignments")
              for r in load_assignment(name, ROOT / "assignments").region_owner()}
    bodies = {}
    for rid, region in scan_package(ROOT).items():
        if rid in graded:
            lines = (ROOT / region.path).read_text(encoding="utf-8").splitlines()
            bodies[rid] = normalise(lines[region.begin:region.end - 1])
    return bodies


def distinctive(body):
    """The lines of a body that say something (not ``_=_`` or ``return_``)."""
    return [line for line in body if len(line.replace("_", "")) >= MIN_CHARS]


def leaks(body, cell):
    """What of ``body`` is found in ``cell`` (both normalised), or None: the whole body, a run
    of WINDOW lines, or SHARE of its distinctive lines, in any order."""
    if not body:
        return None
    joined = "\n".join(cell)
    if "\n".join(body) in joined:
        return body
    for start in range(len(body) - WINDOW + 1):
        window = body[start:start + WINDOW]
        if "\n".join(window) in joined:
            return window
    lines = distinctive(body)
    common = [line for line in lines if line in set(cell)]
    if len(common) >= WINDOW and len(common) >= SHARE * len(lines):
        return common
    return None


def code_cells(path):
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] == "code":
            yield index, normalise("".join(cell["source"]).splitlines())


def test_the_check_finds_a_planted_copy():
    bodies = graded_regions()
    assert {"conv_forward", "conv_backward", "batchnorm_backward"} <= set(bodies)
    source = (ROOT / "tinyresnet/functional/norm.py").read_text(encoding="utf-8").splitlines()
    region = scan_package(ROOT)["batchnorm_backward"]
    copied = ["def mine(dy, cache):"] + [f"  {line}   # spaced differently"
                                          for line in source[region.begin:region.end - 1][4:8]]
    assert leaks(bodies["batchnorm_backward"], normalise(copied)) is not None
    assert leaks(bodies["batchnorm_backward"], normalise(["dx = dy * 2", "return dx"])) is None


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_graded_region_in_a_notebook(notebook):
    bodies = graded_regions()
    found = []
    for index, cell in code_cells(notebook):
        for rid, body in bodies.items():
            hit = leaks(body, cell)
            if hit is not None:
                found.append(f"cell {index} holds region '{rid}': {hit}")
    assert not found, "\n".join(found)
