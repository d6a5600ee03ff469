"""The checker students run: the public tests of their release folder, part by part.

``python -m tinyresnet.assign check A1``, ``tinyresnet check A1`` and ``check("A1")`` in the
notebook all land here: the student's package is copied to a temporary folder and the public tests
run there in a subprocess, with the grader's time limits and repairs, so a syntax error, a loop at
import time or a deleted function gives the same report from every entry point.  The release
folder is the current folder (or ``./A1``) before anything else: an editable install of the
repository must not send the check to the repository's own ``assignments/A1``.  The student's own
folder is never modified.
"""
import json
import sys
import tempfile
from pathlib import Path

from .config import ConfigError, load_assignment
from .report import check_text
from .runner import run_submission
from .submission import prepare_root

__all__ = ["check", "find_release"]


def _release_of(folder, name):
    manifest = folder / ".assign" / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("assignment") == name
    except (OSError, ValueError):
        return False


def find_release(name, start=None):
    """The student release of assignment ``name``: ``start`` (default the current folder) when it
    is one, else ``start/<name>``.  Raises ConfigError saying where it looked."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, start / name):
        if _release_of(folder, name):
            return folder
    raise ConfigError(
        f"no student release of {name} in {start} or {start / name} (a release holds "
        f".assign/manifest.json): run the check inside your release folder, or pass its folder "
        f"(--dir FOLDER, check({name!r}, folder=...))")


def check(name="A1", folder=None, parts=None, stream=None, quiet=False):
    """Run the public tests of a student release; print the report and return the result.

    name : the assignment id; folder : the release folder (default: found from the current one)
    parts : only these part ids; stream : where to print (default sys.stdout)
    """
    folder = Path(folder).resolve() if folder else find_release(name)
    manifest_path = folder / ".assign" / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(
            f"{folder} is not a student release of {name} (no .assign/manifest.json): run "
            f"'python -m tinyresnet.assign build {name}' and work in its student folder")
    assignment = load_assignment(str(folder))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = manifest["files"] + manifest.get("optional_files", [])
    template = {rel: folder / ".assign" / "template" / rel for rel in files}
    function_parts = {(r["file"], r["function"]): r["part"] for r in manifest["regions"]}
    suites = [{"path": str(folder / "tests" / "public_tests.py"),
               "data": str(folder / "tests" / "reference_public.npz"), "visibility": "public"}]
    modules = [f[:-3].replace("/", ".") for f in files if f.endswith(".py")]
    with tempfile.TemporaryDirectory(prefix=f"check-{assignment.id}-") as tmp:
        root = Path(tmp) / "root"
        notes = prepare_root(root, folder / "tinyresnet", {}, template, function_parts)
        result = run_submission(folder.name, assignment, manifest, root, suites,
                                files, modules, template, Path(tmp) / "run",
                                visibilities=("public",), notes=notes, part_ids=parts)
    if not quiet:
        print(check_text(result, assignment), file=stream or sys.stdout, end="")
    return result
