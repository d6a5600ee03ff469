"""A griffe extension for the API reference: render the reST bits of tinyresnet's docstrings.

The library's docstrings are numpydoc, with the key math line written as a reST ``.. math::``
directive or ``:math:`...``` role.  mkdocstrings renders docstrings as Markdown, where those would
show up as plain text, so before rendering this turns

* ``.. math:: expr`` (and its indented continuation lines) into a ``$$ ... $$`` block,
* ``:math:`expr``` into ``$expr$``,
* a reST "simple table" (columns framed by ``=====  =====`` rules) into a Markdown table,
* free text after a numpydoc Parameters/Attributes list (which numpydoc would read as more
  parameters) into a Notes section, and an inline ``Returns y : ...`` line into a Returns section,
* a paragraph ending in a reST literal-block marker ``::`` into one ending in ``:`` (the indented
  block after it is a Markdown code block already),
* a ``*`` between two operands (``C*kh*kw``) into ``\\*``, so Markdown does not read it as emphasis,

leaving code spans and math alone.  pymdownx.arithmatex then hands the math to MathJax.
"""
import re

import griffe

_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_TIMES = re.compile(r"(?<=[\w)\]])\*(?=[\w(])")
_CODE_OR_MATH = re.compile(r"(``.+?``|`[^`]+`|\$[^$]+\$)")
_TABLE_RULE = re.compile(r"^\s*=+( +=+)+\s*$")


def _cells(row, starts):
    """Split a table row at the column starts; text that overflows its column (reST tolerates it
    in the last word) moves the cut to the next space."""
    cuts = [0]
    for a in starts[1:-1]:
        while a < len(row) and a > 0 and row[a - 1] != " " and row[a] != " ":
            a += 1
        cuts.append(max(a, cuts[-1]))
    cuts.append(None)
    return [row[a:b].strip() for a, b in zip(cuts, cuts[1:])]


def _table(lines, i):
    """Convert the simple table starting at ``lines[i]``; return (markdown lines, next index)."""
    rule = lines[i]
    spans = [m.span() for m in re.finditer(r"=+", rule)]
    # a column runs from its rule's start to the next column's start (the last one to the end)
    starts = [a for a, _ in spans] + [None]
    rows, rules_seen, i = [], 0, i + 1
    while i < len(lines) and rules_seen < 2:
        if _TABLE_RULE.match(lines[i]):
            rules_seen += 1
        elif lines[i].strip():
            rows.append(_cells(lines[i], starts))
        i += 1
    if not rows:
        return [], i
    out = ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(_escape_text(c) for c in row) + " |" for row in rows[1:]]
    return out + [""], i


def _escape_text(line):
    parts = _CODE_OR_MATH.split(line)
    return "".join(p if i % 2 else _TIMES.sub(r"\\*", p) for i, p in enumerate(parts))


_SECTION_TITLES = {"Parameters", "Other Parameters", "Attributes"}
_TYPED_SECTIONS = _SECTION_TITLES | {"Returns", "Yields", "Receives", "Raises", "Warns"}
_ITEM = re.compile(r"^\*{0,2}[A-Za-z_]\w*(, \*{0,2}[A-Za-z_]\w*)*(\s+:\s.*|\s*:?\s*)$")


def _close_sections(lines):
    """End a Parameters-like section where free text follows it after a blank line."""
    out, in_list = [], False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i + 1 < len(lines) and re.match(r"^\s*-{3,}\s*$", lines[i + 1]) and stripped:
            in_list = stripped in _SECTION_TITLES
        elif in_list and stripped and i > 0 and not lines[i - 1].strip() and \
                len(line) - len(line.lstrip()) == 0 and not _ITEM.match(stripped):
            in_list = False
            returns = re.match(r"^Returns?\s+(.*)$", stripped)
            if returns:
                out += ["Returns", "-------", returns.group(1)]
                continue
            out += ["Notes", "-----"]
        out.append(line)
    return out


def convert(text):
    """The docstring ``text`` with its reST math turned into Markdown math (see the module doc)."""
    lines = _close_sections(text.splitlines())
    out, i = [], 0
    in_code, after_blank, text_indent, section = False, True, 0, None
    while i < len(lines):
        line = lines[i]
        indent_now = len(line) - len(line.lstrip())
        if i + 1 < len(lines) and line.strip() and re.match(r"^\s*-{3,}\s*$", lines[i + 1]):
            section = line.strip()
        if not line.strip():
            after_blank = True
            out.append(line)
            i += 1
            continue
        # An indented block after a blank line, under unindented text, is a code example: it is
        # left verbatim (escapes would show in a Markdown code block).
        if in_code and indent_now <= text_indent:
            in_code = False
        elif not in_code and after_blank and indent_now >= text_indent + 4 and text_indent == 0:
            in_code = True
        after_blank = False
        if in_code:
            out.append(line)
            i += 1
            continue
        text_indent = indent_now
        if _TABLE_RULE.match(line):
            table, i = _table(lines, i)
            out += table
            continue
        if section in _TYPED_SECTIONS and indent_now == 0:
            # "name : type" lines: the type is shown verbatim, where an escape would show
            out.append(line)
            i += 1
            continue
        match = re.match(r"^(\s*)\.\. math::\s*(.*)$", line)
        if not match:
            line = re.sub(r"(\S)::\s*$", r"\1:", line)
            out.append(_escape_text(_INLINE_MATH.sub(r"$\1$", line)))
            i += 1
            continue
        indent, first = match.groups()
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or
                                  len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            if lines[i].strip():
                body.append(lines[i].strip())
            elif i + 1 < len(lines) and len(lines[i + 1]) - len(lines[i + 1].lstrip()) <= len(indent):
                break
            i += 1
        out += ["", indent + "$$", *[indent + b for b in body], indent + "$$", ""]
    return "\n".join(out)


class RstMath(griffe.Extension):
    """Convert every object's docstring as it is loaded."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
