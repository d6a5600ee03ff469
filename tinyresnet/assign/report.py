"""Words for a SubmissionResult: the checker's table (text, and HTML for a notebook), a student's
feedback file, the grade CSV and Gradescope's ``results.json``.

Everything a student reads is built from case descriptions (parameters), diagnoses and the
student's own code locations; ``redact`` then removes any line of a hidden test's source that
still found its way in (a student's exception message could quote one), so hidden tests never
leak.  Nothing here depends on time or on temporary paths: the same result gives the same text.
"""
import csv
import html
import io
import json

__all__ = ["part_lines", "feedback_text", "check_text", "result_html", "csv_text",
           "gradescope_json", "redact", "source_lines"]

_STATUS = {
    "pass": "passed",
    "fail": "FAILED",
    "not_implemented": "not implemented",
    "blocked": "blocked",
    "error": "ERROR",
    "timeout": "TIME LIMIT",
    "not_run": "not run",
}


def _indent(text, prefix):
    return "\n".join(prefix + line for line in str(text).splitlines())


def part_lines(part, show_passed=False):
    """The lines describing one part: its score, then each case that did not pass."""
    if part.manual:
        return [f"[{part.id}] {part.title}: {part.points:g} points, graded by hand "
                f"(notebook section {part.section})"]
    head = (f"[{part.id}] {part.title}: {part.score:g} / {part.points:g}"
            + (f"  (notebook section {part.section})" if part.section else ""))
    lines = [head]
    lines += [_indent(note, "    note: ") for note in part.notes]
    counted = part.counted
    if part.passed == len(counted):
        lines.append(f"    all {len(counted)} cases passed")
        lines += [_indent(c["message"], "    note: ") for c in counted if c.get("message")]
        return lines
    lines.append(f"    {part.passed} of {len(counted)} cases passed")
    failing = [c for c in counted if c["status"] != "pass"]
    reasons = {(c["status"], c.get("message", "")) for c in failing}
    if len(reasons) == 1 and failing[0]["status"] in ("not_implemented", "blocked", "not_run"):
        # one reason for every case (a stub, a missing file): say it once
        status, message = reasons.pop()
        lines.append(f"    {_STATUS[status]} in all {len(failing)} failing cases:")
        lines.append(_indent(message, "        "))
        return lines
    for case in counted:
        if case["status"] == "pass" and not show_passed:
            continue
        label = "hidden case" if case["visibility"] == "hidden" else "case"
        lines.append(f"    - {label} ({case['about']}): {_STATUS.get(case['status'], case['status'])}")
        if case.get("message"):
            lines.append(_indent(case["message"], "        "))
    return lines


def feedback_text(result, assignment, secret=()):
    """The feedback file of one submission (hidden source lines in ``secret`` redacted)."""
    manual = sum(p.points for p in result.parts if p.manual)
    lines = [
        f"{assignment.id}: {assignment.title}",
        f"submission: {result.name}",
        f"score: {result.score:g} / {result.max_score:g}"
        + (f"  (plus {manual:g} points of written answers, graded by hand)" if manual else ""),
        "",
    ]
    for note in result.notes:
        lines.append(_indent(note, "note: "))
    if result.notes:
        lines.append("")
    for part in result.parts:
        lines += part_lines(part)
    answers = result.answers
    if answers is not None and answers.total:
        lines += ["", f"written answers collected for grading by hand: {answers.summary()} answer "
                      f"cells of your notebook filled in"]
        if answers.note:
            lines.append(_indent(answers.note, "note: "))
    return redact("\n".join(lines) + "\n", secret)


def check_text(result, assignment):
    """What ``check`` prints: a table, then the details of each part that lost points."""
    lines = [f"{assignment.id}: {assignment.title} (public tests)", ""]
    for note in result.notes:
        lines.append(_indent(note, "note: "))
    width = max((len(p.id) for p in result.parts), default=4)
    for p in result.parts:
        if p.manual:
            lines.append(f"  {p.id:<{width}}   written, graded by hand ({p.points:g} points)")
        else:
            lines.append(f"  {p.id:<{width}}  {p.score:6.2f} / {p.points:<5g} {p.status}")
    lines.append(f"  {'total':<{width}}  {result.score:6.2f} / {result.max_score:g}")
    lines.append("")
    for p in result.parts:
        if not p.manual and p.status != "ok":
            lines += part_lines(p)
            lines.append("")
    lines.append("Hidden tests with other parameters are added at grading; passing these is "
                 "necessary, not sufficient.")
    return "\n".join(lines) + "\n"


def result_html(result):
    """The compact table a notebook shows for a result: part, points, status; then the total."""
    cell = '<td style="text-align:{}">{}</td>'.format
    rows = []
    for p in result.parts:
        points = (f"{p.points:g} (by hand)" if p.manual else f"{p.score:g} / {p.points:g}")
        rows.append("<tr>" + cell("left", html.escape(p.id)) + cell("right", points)
                    + cell("left", html.escape(p.status)) + "</tr>")
    rows.append("<tr>" + cell("left", "<b>total</b>")
                + cell("right", f"<b>{result.score:g} / {result.max_score:g}</b>")
                + cell("left", "") + "</tr>")
    return (f"<table><caption>{html.escape(result.assignment)} {html.escape(result.name)}"
            f"</caption><thead><tr><th>part</th><th>points</th><th>status</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def csv_text(results, assignment, secret=()):
    """One row per submission: points per graded part, total, maximum, written answers given
    ('3 of 4': words, so that a spreadsheet does not read a date), notes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    graded = assignment.graded_parts
    writer.writerow(["submission"] + [p.id for p in graded] + ["total", "max", "answered", "notes"])
    for r in results:
        scores = [f"{r.part(p.id).score:g}" for p in graded]
        answers = r.answers if r.answers is not None and r.answers.total else None
        notes = r.notes + [n for p in r.parts for n in p.notes]
        notes += [answers.note] if answers is not None and answers.note else []
        writer.writerow([r.name] + scores + [f"{r.score:g}", f"{r.max_score:g}",
                                             answers.summary() if answers else "",
                                             # a file's note is on each of its parts: once here
                                             redact(" | ".join(dict.fromkeys(notes)), secret)])
    return buffer.getvalue()


def gradescope_json(result, assignment, secret=()):
    """Gradescope's autograder ``results.json`` for one submission."""
    tests = []
    for p in result.parts:
        if p.manual:
            continue
        tests.append({
            "name": f"{p.id}: {p.title}",
            "score": p.score,
            "max_score": p.points,
            "output": redact("\n".join(part_lines(p)), secret),
            "visibility": "visible",
        })
    return json.dumps({"score": result.score, "output": feedback_text(result, assignment, secret),
                       "tests": tests}, indent=2)


def source_lines(text, public="", min_length=24):
    """The distinctive lines of a hidden source file, stripped: short lines, comments and lines
    the public tests share are dropped (they give nothing away, and would redact innocent text)."""
    out = set()
    for line in text.splitlines():
        s = line.strip()
        if len(s) >= min_length and not s.startswith("#") and s not in public:
            out.add(s)
    return out


def redact(text, secret_lines):
    """Replace every occurrence of a secret line (a hidden test's source) by '[hidden]'."""
    for line in sorted(secret_lines, key=len, reverse=True):
        if line in text:
            text = text.replace(line, "[hidden]")
    return text
