"""The grader: every submission of a folder, each in its own subprocess with time limits.

``grade("A1", "submissions/")`` treats each zip and each sub-folder of ``submissions/`` as one
student's submission (a single zip, or a folder that itself holds the edited files, is one
submission), grades it against the public and hidden tests of the instructor bundle, and writes::

    OUT/grades.csv                  points per part, total, maximum, answered questions, notes
    OUT/feedback/<name>.txt         what each student reads
    OUT/answers/<name>.md           the written answers in the student's notebook, to grade by hand
    OUT/gradescope/<name>/results.json   (with gradescope=True) Gradescope's format

Before the class, the bundle's own reference solution is graded in this environment: a reference
that would not get full marks (a BLAS that rounds differently, a broken install, a wrong bundle)
stops the run with a GradeError instead of grading a class against it.  Every path is made
absolute first: the workers run in their own folders.  Grading goes on past a submission that
cannot be read, and past a class where everyone scored 0; both come back as ``GradeRun.problems``
(lines for the instructor), as the command line's non-zero exit.

Feedback describes a failing hidden case by its parameters and diagnosis only, and is passed
through ``report.redact`` with the hidden tests' source lines (so is the CSV's notes column).
"""
import json
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .answers import answers_markdown, collect, release_questions
from .config import ConfigError, load_assignment
from .release import build
from .report import csv_text, feedback_text, gradescope_json, source_lines
from .runner import run_submission
from .submission import SubmissionError, prepare_root, read_notebook, read_submission

__all__ = ["Bundle", "GradeError", "GradeRun", "grade", "grade_one", "discover_submissions",
           "load_bundle", "check_reference"]


class GradeError(RuntimeError):
    """The grader cannot grade: a missing or unreadable bundle, another assignment's bundle, no
    submissions, or a reference solution that would not get full marks in this environment."""


@dataclass
class GradeRun:
    """The results of one grading run, where its files went, and what the instructor must look at
    (``problems``: one line each; the command line exits 1 when there are any)."""

    results: list
    out_dir: Path
    csv_path: Path
    problems: list = field(default_factory=list)
    reference: object = None


@dataclass
class Bundle:
    """An instructor bundle, checked: its manifest, test suites, template, hidden source lines and
    released notebook (text)."""

    path: Path
    manifest: dict
    suites: list
    template: dict
    secret: set
    notebook: str


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


def load_bundle(bundle, assignment_id=None):
    """Read and check an instructor bundle; returns a Bundle.

    Raises GradeError naming what is wrong: no such folder, not a bundle (no manifest.json), an
    unreadable manifest, another assignment's bundle, a file the build writes that is missing.
    """
    bundle = Path(bundle).resolve()
    build_hint = (f"build one with 'python -m tinyresnet.assign build {assignment_id or 'A1'}' "
                  f"and pass its instructor folder")
    if not bundle.is_dir():
        raise GradeError(f"bundle {bundle}: no such folder ({build_hint})")
    try:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        manifest["assignment"], manifest["files"], manifest["regions"], manifest["cases"]
    except FileNotFoundError as err:
        raise GradeError(f"{bundle} is not an instructor bundle (no manifest.json): "
                         f"{build_hint}") from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GradeError(f"bundle {bundle}: manifest.json is unreadable ({type(err).__name__}: "
                         f"{err}); rebuild the bundle") from err
    if assignment_id is not None and manifest["assignment"] != assignment_id:
        raise GradeError(f"bundle {bundle} is assignment {manifest['assignment']}'s, not "
                         f"{assignment_id}'s")
    public = bundle / "tests" / "public_tests.py"
    hidden = bundle / "tests" / "hidden_tests.py"
    files = manifest["files"] + manifest.get("optional_files", [])
    needed = [public, bundle / "tests" / "reference_public.npz", bundle / "template" / "tinyresnet"]
    needed += [bundle / "template" / rel for rel in files]
    needed += [bundle / "solution" / rel for rel in files]
    if hidden.is_file():
        needed.append(bundle / "tests" / "reference_hidden.npz")
    try:
        config = load_assignment(str(bundle))
    except ConfigError as err:
        raise GradeError(f"bundle {bundle} has no readable assignment.toml ({err}); rebuild the "
                         f"bundle") from err
    needed.append(bundle / config.notebook)
    missing = [str(p.relative_to(bundle)) for p in needed if not p.exists()]
    if missing:
        raise GradeError(f"bundle {bundle} is incomplete: {', '.join(missing[:4])}"
                         f"{' ...' if len(missing) > 4 else ''} missing; rebuild the bundle")
    suites = [{"path": str(public), "data": str(bundle / "tests" / "reference_public.npz"),
               "visibility": "public"}]
    secret = set()
    if hidden.is_file():
        suites.append({"path": str(hidden), "data": str(bundle / "tests" / "reference_hidden.npz"),
                       "visibility": "hidden"})
        secret = source_lines(hidden.read_text(encoding="utf-8"),
                              public.read_text(encoding="utf-8"))
    template = {rel: bundle / "template" / rel for rel in files}
    notebook = (bundle / config.notebook).read_text(encoding="utf-8")
    try:
        release_questions(notebook)
    except ImportError as err:  # nbformat missing: say so before grading anyone
        raise GradeError(str(err)) from err
    except Exception as err:  # nbformat's errors for a damaged notebook have no common base
        raise GradeError(f"bundle {bundle}: {config.notebook} is unreadable ({type(err).__name__}: "
                         f"{err}); rebuild the bundle") from err
    return Bundle(bundle, manifest, suites, template, secret, notebook)


def _modules(files):
    return [f[:-3].replace("/", ".") for f in files if f.endswith(".py")]


def grade_one(name, path, assignment, bundle, workdir, visibilities=("public", "hidden")):
    """Grade one submission (zip or folder) against a Bundle; returns its SubmissionResult, with
    the written answers of its notebook (``result.answers``) and, when it could not be read at
    all, the reason (``result.read_error``)."""
    function_parts = {(r["file"], r["function"]): r["part"] for r in bundle.manifest["regions"]}
    root = Path(workdir) / "root"
    try:
        files = read_submission(path, assignment.all_files)
        notebook, why = read_notebook(path, assignment.notebook)
    except SubmissionError as e:
        files, read_error = {rel: None for rel in assignment.files}, str(e)
        notebook, why = None, str(e)
    else:
        read_error = None
    # an optional file (A3: the student's own layers) that is absent keeps the release's version
    files = {rel: data for rel, data in files.items()
             if data is not None or rel not in assignment.optional_files}
    notes = prepare_root(root, bundle.path / "template" / "tinyresnet", files, bundle.template,
                         function_parts)
    result = run_submission(name, assignment, bundle.manifest, root, bundle.suites,
                            assignment.all_files, _modules(assignment.all_files), bundle.template,
                            Path(workdir) / "run", visibilities=visibilities, notes=notes)
    if read_error:
        result.notes.insert(0, read_error)
    result.read_error = read_error
    result.answers = collect(bundle.notebook, notebook, why)
    return result


def _first_loss(result):
    """What cost a result its first lost points, in one line (for the instructor)."""
    what = result.notes[0] if result.notes else ""
    for part in result.parts:
        if not what and not part.manual and part.score < part.points:
            case = next(c for c in part.counted if c["status"] != "pass")
            what = f"part {part.id}: {case['about']}: {case.get('message') or case['status']}"
    what = " ".join(what.split())
    return what if len(what) <= 300 else what[:297] + "..."


def check_reference(assignment, bundle, workdir, out=None):
    """Grade the bundle's reference solution here; raise GradeError unless it gets full marks.

    Costs one more submission's grading (A1, A2: about a second; A3: its training run).  The
    reference's feedback goes to ``out/reference.txt`` when it falls short.  Returns its result.
    """
    result = grade_one("reference", bundle.path / "solution", assignment, bundle, workdir)
    if result.score < result.max_score:
        detail = ""
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "reference.txt").write_text(feedback_text(result, assignment),
                                               encoding="utf-8")
            detail = f"; its feedback is in {out / 'reference.txt'}"
        raise GradeError(
            f"the reference solution scores {result.score:g}/{result.max_score:g} in this "
            f"environment ({assignment.id} {_first_loss(result)}); fix the environment or the "
            f"bundle before grading a class{detail}")
    return result


def grade(name, submissions, bundle=None, out_dir=None, gradescope=False, assignments_dir=None,
          overrides=None, time_limit_s=None, build_dir=None, jobs=1, reference_check=True):
    """Grade a folder of submissions (or one); returns a GradeRun.

    bundle : the instructor bundle (default: build the assignment now into ``build_dir``); its
        own assignment.toml is the configuration (``name`` must be its id)
    time_limit_s : overrides every part's per-case time limit
    jobs : submissions graded at once (each in its own subprocess; results keep their order)
    reference_check : grade the bundle's reference solution first, and stop (GradeError) when it
        would not get full marks here
    Raises GradeError (no bundle, no submissions, a failing reference), ConfigError (no such
    assignment) or SubmissionError (no such submissions path).
    """
    overrides = dict(overrides or {})
    submissions = Path(submissions).resolve()
    if bundle is None:
        bundle = build(name, build_dir and Path(build_dir).resolve(),
                       assignments_dir and Path(assignments_dir).resolve(), overrides).instructor
    bundle = load_bundle(bundle, name)
    try:
        assignment = load_assignment(str(bundle.path), overrides=overrides)
    except ConfigError as err:
        raise GradeError(f"bundle {bundle.path}: {err}") from err
    out = Path(out_dir).resolve() if out_dir else Path.cwd() / "grades" / assignment.id
    if time_limit_s is not None:
        for part in assignment.parts:
            part.time_limit_s = float(time_limit_s)
    found = discover_submissions(submissions, assignment.files)
    if not found:
        raise GradeError(f"no submissions in {submissions}: expected zip files or folders, one "
                         f"per student (or a folder holding the edited files)")
    with tempfile.TemporaryDirectory(prefix=f"grade-{assignment.id}-") as tmp:
        reference = (check_reference(assignment, bundle, Path(tmp) / "reference", out)
                     if reference_check else None)

        def one(item):
            i, (student, path) = item
            workdir = Path(tmp) / f"{i:04d}"
            result = grade_one(student, path, assignment, bundle, workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            return result

        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            results = list(pool.map(one, enumerate(found)))
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    for result in results:
        student = result.name
        if result.log:  # the grader itself failed: the worker's log is for the instructor only
            (out / "logs").mkdir(exist_ok=True)
            (out / "logs" / f"{student}.log").write_text(result.log, encoding="utf-8")
        (out / "feedback" / f"{student}.txt").write_text(
            feedback_text(result, assignment, bundle.secret), encoding="utf-8")
        if result.answers.total:
            (out / "answers").mkdir(exist_ok=True)
            (out / "answers" / f"{student}.md").write_text(
                answers_markdown(student, assignment, result.answers), encoding="utf-8")
        if gradescope:
            target = out / "gradescope" / student
            target.mkdir(parents=True, exist_ok=True)
            (target / "results.json").write_text(
                gradescope_json(result, assignment, bundle.secret), encoding="utf-8")
    csv_path = out / "grades.csv"
    csv_path.write_text(csv_text(results, assignment, bundle.secret), encoding="utf-8")
    return GradeRun(results, out, csv_path, _problems(results, out, reference), reference)


def _problems(results, out, reference):
    """Lines for the instructor: submissions that could not be read; a class of zeros."""
    problems = []
    unread = [r for r in results if r.read_error]
    if unread:
        problems.append(
            f"{len(unread)} submission{'s' if len(unread) > 1 else ''} could not be read and "
            f"got 0: " + "; ".join(r.read_error for r in unread))
    if all(r.score == 0 for r in results):
        problems.append(
            f"every submission scored 0 ({len(results)} graded"
            + (", though the reference gets full marks here" if reference is not None else "")
            + f"): look at the feedback in {out / 'feedback'} before publishing "
              f"{out / 'grades.csv'}")
    return problems
