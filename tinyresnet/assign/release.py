"""The generator: an assignment's student release and instructor bundle, from the library itself.

``build("A1")`` writes::

    build/assign/A1/student/            what students get
        tinyresnet/                     the package, the assignment's regions replaced by stubs
        A1.ipynb                        the notebook, outputs cleared
        assignment.toml                 the configuration (parts, points, files to edit)
        tests/public_tests.py           the public tests
        tests/reference_public.npz      their inputs and the reference's answers (fixed seeds)
        .assign/manifest.json           regions and public cases, for the checker
        .assign/template/...            release copies of the editable files (to repair a broken one)
        README.md
    build/assign/A1/instructor/         what graders keep
        assignment.toml, manifest.json  (all cases)
        A1.ipynb                        the released notebook (its answer cells, for the grader)
        tests/{public,hidden}_tests.py and reference_{public,hidden}.npz
        template/tinyresnet/            the release package, onto which submissions are laid
        solution/                       the reference versions of the editable files

Reference data is recorded by running every test once against the library (``harness`` record
mode): a test the reference itself fails stops the build.  A configured region that the library
no longer holds, or an unbalanced marker, stops it too (``markers.MarkerError``).
"""
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import load_assignment, withheld_regions
from .harness import describe, run_case
from .markers import MarkerError, render_release, scan_package

__all__ = ["BuildError", "Build", "build", "check_regions", "release_stubs", "package_root",
           "load_suite", "strip_notebook", "default_build_dir"]


class BuildError(RuntimeError):
    """The reference solution failed one of its own tests, or a file is missing."""


@dataclass
class Build:
    """Where a build went."""

    assignment: object
    student: Path
    instructor: Path
    source: Path


def package_root():
    """The folder holding the reference ``tinyresnet`` package (the library itself)."""
    return Path(__file__).resolve().parents[2]


def default_build_dir():
    return Path.cwd() / "build" / "assign"


def check_regions(assignment, regions, withheld):
    """Every configured region must exist, and graded ones must sit in the files students edit.

    Returns {region id: Part}.  Raises MarkerError listing every problem at once.
    """
    owner = assignment.region_owner()
    problems = []
    for rid, part in owner.items():
        if rid not in regions:
            problems.append(
                f"part '{part.id}' needs region '{rid}', but no module holds "
                f"'# BEGIN SOLUTION {rid}' (was it edited away?)")
        elif regions[rid].path not in assignment.files:
            problems.append(
                f"region '{rid}' (part '{part.id}') is in {regions[rid].path}, which is not among "
                f"the files students edit: {assignment.files}")
    for rid in withheld:
        if rid not in regions:
            problems.append(f"withheld region '{rid}' has no '# BEGIN SOLUTION {rid}' marker")
    if problems:
        raise MarkerError(f"{assignment.id} ({assignment.config_path}): " + "; ".join(problems))
    return owner


def load_suite(path, name):
    """Import a test file by path; returns its ``suite``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "suite"):
        raise BuildError(f"{path}: a test file must define 'suite = Suite()'")
    return module.suite


def strip_notebook(path, out):
    """Copy a notebook without outputs, execution counts or cells tagged 'solution'."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    nb["cells"] = cells
    Path(out).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _stub_message(assignment, part, region):
    return (f"{assignment.id} part '{part.id}' ({part.title}) is not implemented yet: write "
            f"{region.function} as section {part.section} of {assignment.notebook} explains")


def release_stubs(assignment, regions, withheld):
    """{module path: {region id: the stub's NotImplementedError message}} of a release."""
    stubs = {}
    for rid, part in assignment.region_owner().items():
        stubs.setdefault(regions[rid].path, {})[rid] = _stub_message(assignment, part, regions[rid])
    for rid in withheld:
        stubs.setdefault(regions[rid].path, {})[rid] = (
            f"{regions[rid].function} is withheld in {assignment.id}'s release: it is not part "
            f"of this assignment")
    return stubs


def _record(assignment, suite, visibility, out_npz):
    """Run a suite against the reference, store inputs and answers; returns manifest cases."""
    store, cases = {}, []
    known = {p.id: p for p in assignment.graded_parts}
    for test in suite.tests:
        if test.part not in known:
            raise BuildError(f"{assignment.id}: test {test.name} is for unknown part {test.part!r}")
        part = known[test.part]
        for index, case in enumerate(test.cases):
            if test.record:
                try:
                    run_case(test, index, "record", store, assignment.seed,
                             assignment.tolerances, part.params)
                except Exception as e:
                    raise BuildError(
                        f"{assignment.id}: the reference solution fails its own {visibility} test "
                        f"{test.name}[{index}] ({describe(case)}): {type(e).__name__}: {e}") from e
            cases.append({"key": f"{visibility}:{test.name}[{index}]", "part": test.part,
                          "visibility": visibility, "about": describe(case)})
    np.savez_compressed(out_npz, **store)
    return cases


def _copy_package(source, target):
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


_README = """# {id}: {title}

Work through `{notebook}`: it explains each part and asks the written questions.
You edit only these files and the notebook (nothing else is collected for grading):

{files}
- `{notebook}`: write each written answer in its answer cell ("Your answer to question N"),
  below the first line, or in new cells right after it; keep the cell, its tag is how the
  grader finds it

Check your work at any time (public tests, points and a diagnosis per part):

    python -m tinyresnet.assign check {id}

or, from the notebook, `from tinyresnet.assign import check; check("{id}")`.
Grading adds hidden tests with other parameters. Submit a zip of this folder (or of the files
above).

| part | points | notebook section |
|---|---|---|
{table}
"""


def build(name, out_dir=None, assignments_dir=None, overrides=None, source=None):
    """Build the student release and the instructor bundle of one assignment; returns a Build.

    source : the folder holding the ``tinyresnet`` package whose files are released (default the
        library itself; reference data is always recorded with the imported library)
    """
    assignment = load_assignment(name, assignments_dir, overrides)
    src_root = Path(source) if source else package_root()
    regions = scan_package(src_root)
    withheld = withheld_regions(assignment, assignments_dir)
    owner = check_regions(assignment, regions, withheld)
    out = Path(out_dir) if out_dir else default_build_dir()
    student, instructor = out / assignment.id / "student", out / assignment.id / "instructor"
    for folder in (student, instructor):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    # 1. the package, with this assignment's regions stubbed and withheld ones hidden
    _copy_package(src_root / "tinyresnet", student / "tinyresnet")
    stubs_by_file = release_stubs(assignment, regions, withheld)
    for path in sorted({r.path for r in regions.values()}):
        source = (src_root / path).read_text(encoding="utf-8")
        (student / path).write_text(render_release(source, path, stubs_by_file.get(path, {})),
                                    encoding="utf-8")

    # 2. tests and reference data
    for folder in (student / "tests", instructor / "tests"):
        folder.mkdir()
    public_src = assignment.root / assignment.public_tests
    hidden_src = assignment.root / assignment.hidden_tests
    public = load_suite(public_src, f"_assign_{assignment.id}_public")
    cases = _record(assignment, public, "public", instructor / "tests" / "reference_public.npz")
    if hidden_src.is_file():
        hidden = load_suite(hidden_src, f"_assign_{assignment.id}_hidden")
        hidden_cases = _record(assignment, hidden, "hidden",
                               instructor / "tests" / "reference_hidden.npz")
        shutil.copyfile(hidden_src, instructor / "tests" / "hidden_tests.py")
    else:
        hidden_cases = []
    for folder in (student, instructor):
        shutil.copyfile(public_src, folder / "tests" / "public_tests.py")
    shutil.copyfile(instructor / "tests" / "reference_public.npz",
                    student / "tests" / "reference_public.npz")
    covered = {c["part"] for c in cases + hidden_cases}
    untested = [p.id for p in assignment.graded_parts if p.id not in covered]
    if untested:
        raise BuildError(f"{assignment.id}: parts without any test: {untested}")

    # 3. notebook, configuration, manifests, template and solution copies
    notebook = assignment.root / assignment.notebook
    if not notebook.is_file():
        raise BuildError(f"{assignment.id}: the notebook {notebook} is missing (the stubs send "
                         f"students to its sections)")
    strip_notebook(notebook, student / assignment.notebook)
    # the grader reads the expected answer cells (and the questions) from the released notebook
    shutil.copyfile(student / assignment.notebook, instructor / assignment.notebook)
    for folder in (student, instructor):
        shutil.copyfile(assignment.config_path, folder / assignment.config_path.name)
    region_list = [{"id": rid, "part": part.id, "file": regions[rid].path,
                    "function": regions[rid].function} for rid, part in owner.items()]
    manifest = {"assignment": assignment.id, "files": assignment.files,
                "optional_files": assignment.optional_files, "regions": region_list}
    (student / ".assign").mkdir()
    (student / ".assign" / "manifest.json").write_text(
        json.dumps(dict(manifest, cases=cases), indent=1), encoding="utf-8")
    (instructor / "manifest.json").write_text(
        json.dumps(dict(manifest, cases=cases + hidden_cases), indent=1), encoding="utf-8")
    for rel in assignment.all_files:
        for target in (student / ".assign" / "template" / rel, instructor / "solution" / rel):
            target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(student / rel, student / ".assign" / "template" / rel)
        shutil.copyfile(src_root / rel, instructor / "solution" / rel)
    _copy_package(student / "tinyresnet", instructor / "template" / "tinyresnet")
    table = "\n".join(f"| {p.id}: {p.title} | {p.points:g}{' (by hand)' if p.manual else ''} | "
                      f"{p.section} |" for p in assignment.parts)
    (student / "README.md").write_text(_README.format(
        id=assignment.id, title=assignment.title, notebook=assignment.notebook,
        files="\n".join(f"- `{f}`" for f in assignment.files), table=table), encoding="utf-8")
    return Build(assignment, student, instructor, src_root)
