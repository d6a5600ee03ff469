"""The grader: every submission of a folder, each in its own subprocess with time limits.

``grade("A1", "submissions/")`` treats each zip and each sub-folder of ``submissions/`` as one
student's submission (a single zip, or a folder that itself holds the edited files, is one
submission), grades it against the public and hidden tests of the instructor bundle, and writes::

    OUT/grades.csv                  points per part, total, maximum, notes
    OUT/feedback/<name>.txt         what each student reads
    OUT/gradescope/<name>/results.json   (with gradescope=True) Gradescope's format

Feedback describes a failing hidden case by its parameters and diagnosis only, and is passed
through ``report.redact`` with the hidden tests' source lines (so is the CSV's notes column).
"""
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .config import load_assignment
from .release import build
from .report import csv_text, feedback_text, gradescope_json, source_lines
from .runner import run_submission
from .submission import SubmissionError, prepare_root, read_submission

__all__ = ["GradeRun", "grade", "discover_submissions", "load_bundle"]


@dataclass
class GradeRun:
    """The results of one grading run and where its files went."""

    results: list
    out_dir: Path
    csv_path: Path


def _safe_name(name):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"


def discover_submissions(path, editable):
    """[(name, path)]: the path itself when it is one submission, else each zip/folder in it."""
    path = Path(path)
    if path.is_file():
        return [(_safe_name(path.stem), path)]
    if not path.is_dir():
        raise SubmissionError(f"{path}: no such file or folder")
    looks_single = any((path / rel).is_file() or (path / Path(rel).name).is_file()
                       for rel in editable)
    if looks_single:
        return [(_safe_name(path.name), path)]
    found, taken = [], set()
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir() or child.suffix.lower() == ".zip":
            name = base = _safe_name(child.stem if child.is_file() else child.name)
            suffix = 2
            while name in taken:  # alice/ and alice.zip: two feedback files, not one
                name, suffix = f"{base}-{suffix}", suffix + 1
            taken.add(name)
            found.append((name, child))
    return found


def load_bundle(bundle):
    """The instructor bundle's manifest, suites, template and hidden source lines."""
    import json

    bundle = Path(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    suites = [{"path": str(bundle / "tests" / "public_tests.py"),
               "data": str(bundle / "tests" / "reference_public.npz"), "visibility": "public"}]
    hidden = bundle / "tests" / "hidden_tests.py"
    secret = set()
    if hidden.is_file():
        suites.append({"path": str(hidden), "data": str(bundle / "tests" / "reference_hidden.npz"),
                       "visibility": "hidden"})
        secret = source_lines(hidden.read_text(encoding="utf-8"),
                              (bundle / "tests" / "public_tests.py").read_text(encoding="utf-8"))
    template = {rel: bundle / "template" / rel
                for rel in manifest["files"] + manifest.get("optional_files", [])}
    return manifest, suites, template, secret


def _modules(files):
    return [f[:-3].replace("/", ".") for f in files if f.endswith(".py")]


def grade_one(name, path, assignment, bundle, workdir, visibilities=("public", "hidden")):
    """Grade one submission (zip or folder); returns its SubmissionResult."""
    manifest, suites, template, _ = load_bundle(bundle)
    function_parts = {(r["file"], r["function"]): r["part"] for r in manifest["regions"]}
    root = Path(workdir) / "root"
    try:
        files = read_submission(path, assignment.all_files)
    except SubmissionError as e:
        files, read_error = {rel: None for rel in assignment.files}, str(e)
    else:
        read_error = None
    # an optional file (A3: the student's own layers) that is absent keeps the release's version
    files = {rel: data for rel, data in files.items()
             if data is not None or rel not in assignment.optional_files}
    notes = prepare_root(root, Path(bundle) / "template" / "tinyresnet", files, template,
                         function_parts)
    result = run_submission(name, assignment, manifest, root, suites, assignment.all_files,
                            _modules(assignment.all_files), template, Path(workdir) / "run",
                            visibilities=visibilities, notes=notes)
    if read_error:
        result.notes.insert(0, read_error)
    return result


def grade(name, submissions, bundle=None, out_dir=None, gradescope=False, assignments_dir=None,
          overrides=None, time_limit_s=None, build_dir=None, jobs=1):
    """Grade a folder of submissions (or one); returns a GradeRun.

    bundle : the instructor bundle (default: build the assignment now into ``build_dir``)
    time_limit_s : overrides every part's per-case time limit
    jobs : submissions graded at once (each in its own subprocess; results keep their order)
    """
    overrides = dict(overrides or {})
    assignment = load_assignment(name, assignments_dir, overrides)
    if time_limit_s is not None:
        for part in assignment.parts:
            part.time_limit_s = float(time_limit_s)
    if bundle is None:
        bundle = build(name, build_dir, assignments_dir, overrides).instructor
    secret = load_bundle(bundle)[3]
    out = Path(out_dir) if out_dir else Path.cwd() / "grades" / assignment.id
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    found = discover_submissions(submissions, assignment.files)
    with tempfile.TemporaryDirectory(prefix=f"grade-{assignment.id}-") as tmp:

        def one(item):
            i, (student, path) = item
            workdir = Path(tmp) / f"{i:04d}"
            result = grade_one(student, path, assignment, bundle, workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            return result

        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            results = list(pool.map(one, enumerate(found)))
        for result in results:
            student = result.name
            if result.log:  # the grader itself failed: the worker's log is for the instructor only
                (out / "logs").mkdir(exist_ok=True)
                (out / "logs" / f"{student}.log").write_text(result.log, encoding="utf-8")
            (out / "feedback" / f"{student}.txt").write_text(
                feedback_text(result, assignment, secret), encoding="utf-8")
            if gradescope:
                target = out / "gradescope" / student
                target.mkdir(parents=True, exist_ok=True)
                (target / "results.json").write_text(
                    gradescope_json(result, assignment, secret), encoding="utf-8")
    csv_path = out / "grades.csv"
    csv_path.write_text(csv_text(results, assignment, secret), encoding="utf-8")
    return GradeRun(results, out, csv_path)
