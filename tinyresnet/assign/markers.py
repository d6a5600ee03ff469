"""Solution regions inside the library modules, and the stubs that replace them in a release.

The shipped library *is* the reference solution.  The lines a student writes are fenced inside
the real modules::

    def relu_forward(x):
        \"\"\"...docstring stays in the release...\"\"\"
        # BEGIN SOLUTION relu_forward
        check_array(x, "relu")
        mask = x > 0
        return x * mask, mask
        # END SOLUTION

A release replaces the fenced lines by a stub, indented like the ``BEGIN`` line, that raises
``NotImplementedError`` naming the assignment, the part and the notebook section.  Regions that
are not this assignment's are either kept (their marker lines removed) or withheld (stubbed, not
graded: a loop reference that would give an answer away, or a later assignment's solution).

Drift between the library and the assignments fails loudly: a ``BEGIN`` without its ``END``, an
``END`` without a ``BEGIN``, a nested or repeated region, or a configured region that no module
holds any more raises ``MarkerError`` naming the file and line.
"""
import ast
import re
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MarkerError", "Region", "find_regions", "scan_package", "render_release", "stub_lines"]

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?:[ \t]+(?P<id>\S+))?[ \t]*$")
_END = re.compile(r"^[ \t]*# END SOLUTION\b.*$")
_ANY_MARKER = re.compile(r"#\s*(BEGIN|END)\s+SOLUTION")


class MarkerError(ValueError):
    """A solution marker is missing, unbalanced, nested, repeated or misplaced."""


@dataclass(frozen=True)
class Region:
    """One fenced solution region.

    ``begin`` and ``end`` are the 1-based line numbers of the marker lines; ``function`` is the
    qualified name of the innermost function holding the region (``"BasicBlock.backward"``).
    """

    id: str
    path: str
    begin: int
    end: int
    indent: str
    function: str


_AST_LOCK = threading.Lock()


def parse_source(source, filename="<unknown>"):
    """``ast.parse`` one call at a time: the grader reads submissions in a thread pool, and
    CPython 3.11's AST constructor keeps its recursion depth in state shared by every thread, so
    two parses at once can fail with "SystemError: AST constructor recursion depth mismatch"
    (CPython gh-106905)."""
    with _AST_LOCK:
        return ast.parse(source, filename=filename)


def _enclosing_functions(source, path):
    """(first line, last line, qualified name) of every function in ``source``."""
    try:
        tree = parse_source(source, filename=str(path))
    except SyntaxError as e:
        raise MarkerError(f"{path}: cannot parse ({e.msg}, line {e.lineno})") from e
    spans = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno, child.end_lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def find_regions(source, path):
    """All regions of one module's source, in file order.

    Raises MarkerError for a BEGIN without an id, without its END, nested in another region, an
    END without a BEGIN, a repeated id, or a region outside any function body.
    """
    regions, open_region = [], None
    lines = source.splitlines()
    for number, line in enumerate(lines, start=1):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if not begin.group("id"):
                raise MarkerError(f"{path}:{number}: '# BEGIN SOLUTION' needs a region id")
            if open_region is not None:
                raise MarkerError(
                    f"{path}:{number}: region '{begin.group('id')}' begins inside region "
                    f"'{open_region[0]}' (opened at line {open_region[1]}); regions cannot nest"
                )
            open_region = (begin.group("id"), number, begin.group("indent"))
        elif end:
            if open_region is None:
                raise MarkerError(f"{path}:{number}: '# END SOLUTION' without a '# BEGIN SOLUTION'")
            regions.append(open_region + (number,))
            open_region = None
        elif line.lstrip().startswith("#") and _ANY_MARKER.search(line):
            raise MarkerError(
                f"{path}:{number}: malformed solution marker {line.strip()!r}; write "
                f"'# BEGIN SOLUTION <id>' and '# END SOLUTION' on lines of their own"
            )
    if open_region is not None:
        raise MarkerError(
            f"{path}:{open_region[1]}: region '{open_region[0]}' has no '# END SOLUTION'"
        )
    spans = _enclosing_functions(source, path) if regions else []
    seen, found = {}, []
    for rid, begin, indent, end in regions:
        if rid in seen:
            raise MarkerError(f"{path}:{begin}: region '{rid}' repeats the one at line {seen[rid]}")
        seen[rid] = begin
        # a comment is not in the AST: the END marker may lie past the function's last line
        holders = [s for s in spans if s[0] < begin <= s[1]]
        if not holders:
            raise MarkerError(f"{path}:{begin}: region '{rid}' is not inside a function body")
        function = max(holders, key=lambda s: s[0])[2]
        found.append(Region(rid, path, begin, end, indent, function))
    return found


def scan_package(root, package="tinyresnet"):
    """Every region in the package below ``root``: dict id -> Region (paths relative to root).

    The assignment tooling itself (``tinyresnet/assign``), which documents the markers, is not
    scanned.  Raises MarkerError when one id is used in two modules.
    """
    root = Path(root)
    tooling = root / package / "assign"
    regions = {}
    for file in sorted((root / package).rglob("*.py")):
        if "__pycache__" in file.parts or tooling in file.parents:
            continue
        rel = file.relative_to(root).as_posix()
        source = file.read_text(encoding="utf-8")
        if "SOLUTION" not in source:
            continue
        for region in find_regions(source, rel):
            if region.id in regions:
                other = regions[region.id]
                raise MarkerError(
                    f"{rel}:{region.begin}: region '{region.id}' is also defined in "
                    f"{other.path}:{other.begin}"
                )
            regions[region.id] = region
    return regions


def stub_lines(indent, message):
    """The lines that replace a region: a comment for the student and the raise."""
    chunks = textwrap.wrap(message, 72, drop_whitespace=False) or [""]
    return (
        [f"{indent}# YOUR CODE HERE: replace this raise with your implementation.",
         f"{indent}raise NotImplementedError("]
        + [f"{indent}    {chunk!r}" for chunk in chunks]
        + [f"{indent})"]
    )


def render_release(source, path, stubs):
    """The release version of one module's source.

    ``stubs`` maps region id -> NotImplementedError message for the regions to replace; every
    other region keeps its body and loses its marker lines.
    """
    regions = {r.begin: r for r in find_regions(source, path)}
    lines = source.splitlines()
    out, number = [], 1
    while number <= len(lines):
        region = regions.get(number)
        if region is None:
            out.append(lines[number - 1])
            number += 1
            continue
        if region.id in stubs:
            out.extend(stub_lines(region.indent, stubs[region.id]))
        else:
            out.extend(lines[region.begin : region.end - 1])
        number = region.end + 1
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")
