"""A submission (a zip or a folder) made into a grading root that always imports.

Only the files the student edits are taken from a submission (and, for the written answers, its
notebook); everything else comes from the release (the template), so a grade never depends on what
else a student changed.  Files are found
by their path inside the release (``tinyresnet/functional/conv.py``), under any top folder the zip
may add, or, for a loose file, by a name that is unambiguous.

Before anything runs, each taken file is checked statically against its release version:

* not UTF-8 or a SyntaxError: the release version (stubs) is used instead, with a note;
* a function or class the release defines is missing (deleted or renamed): a stub that raises
  ``NotImplementedError`` naming it and its part is appended, so the package still imports and
  only that part is lost.  A deleted method is reported; the class's base then raises on use.

Each note names the parts it costs, so the feedback can say why a part got no points.
"""
import ast
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from .markers import parse_source

__all__ = ["SubmissionError", "read_submission", "read_notebook", "prepare_root", "required_names",
           "MAX_FILE_BYTES", "MAX_NOTEBOOK_BYTES"]

MAX_FILE_BYTES = 2_000_000
MAX_NOTEBOOK_BYTES = 100_000_000  # a notebook keeps its outputs (plots): far larger than code
_IGNORED = ("__MACOSX/", "__pycache__/", ".ipynb_checkpoints/")


class SubmissionError(ValueError):
    """A submission that cannot be read at all (not a zip, not a folder, a damaged zip)."""


def _limit(name):
    return MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_FILE_BYTES


def _listing(path):
    """{posix relative path: loader} of every file in a zip or folder (ignored folders and files
    over the size limit left out)."""
    path = Path(path)
    if path.is_dir():
        files = {f.relative_to(path).as_posix(): f for f in sorted(path.rglob("*")) if f.is_file()}
        listing = {k: f.read_bytes for k, f in files.items() if f.stat().st_size <= _limit(k)}
    elif path.is_file() and zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
            infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise SubmissionError(f"{path.name} is not a readable zip file ({err})") from err

        def load(info):
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
                raise SubmissionError(f"{path.name}: {info.filename} cannot be read from the "
                                      f"zip ({err})") from err

        listing = {info.filename: (lambda info=info: load(info)) for info in infos
                   if not info.is_dir() and info.file_size <= _limit(info.filename)}
    elif path.suffix.lower() == ".zip":
        raise SubmissionError(f"{path.name} is not a readable zip file (damaged, or not a zip)")
    else:
        raise SubmissionError(f"{path}: a submission must be a folder or a .zip file")
    return {k: v for k, v in listing.items() if not any(i in k for i in _IGNORED)}


def read_submission(path, editable):
    """{editable relative path: bytes, or None when the submission lacks it}."""
    listing = _listing(path)
    names = {PurePosixPath(rel).name for rel in editable}
    found = {}
    for rel in editable:
        exact = [k for k in listing if k == rel or k.endswith("/" + rel)]
        if not exact:
            base = PurePosixPath(rel).name
            same = [k for k in listing if PurePosixPath(k).name == base]
            unique_name = sum(PurePosixPath(r).name == base for r in editable) == 1
            exact = same if (len(same) == 1 and unique_name and base in names) else []
        found[rel] = listing[min(exact, key=len)]() if exact else None
    return found


def read_notebook(path, name):
    """(bytes or None, note): the notebook ``name`` (``A1.ipynb``) of a submission, found by name
    in any folder, else its only notebook whatever its name (``A1 (1).ipynb``); the note says why
    there is none."""
    listing = _listing(path)
    notebooks = [k for k in listing if k.endswith(".ipynb")]
    named = [k for k in notebooks if PurePosixPath(k).name == name]
    chosen = named or (notebooks if len(notebooks) == 1 else [])
    if chosen:
        return listing[min(chosen, key=len)](), ""
    if notebooks:
        return None, (f"no {name} in the submission, and {len(notebooks)} other notebooks: "
                      f"{', '.join(sorted(notebooks)[:3])}")
    return None, f"no {name} in the submission: the written answers could not be collected"


def required_names(source):
    """Top-level functions and classes of a module, and the methods of its classes:
    {"conv2d_forward", "BasicBlock", "BasicBlock.forward", ...}."""
    tree = parse_source(source)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(f"{node.name}.{n.name}" for n in node.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def _missing_stub(name, rel, part, present):
    message = (f"{name} is missing from {rel} (deleted or renamed?): part '{part}' cannot be "
               f"graded" if part else f"{name} is missing from {rel} (deleted or renamed?)")
    if "." in name:
        cls, method = name.split(".", 1)
        if cls not in present:
            return ""
        return (f"\n\ndef _missing_{cls}_{method}(self, *args, **kwargs):\n"
                f"    raise NotImplementedError({message!r})\n\n\n"
                f"{cls}.{method} = _missing_{cls}_{method}\n")
    return (f"\n\nclass {name}:\n    def __init__(self, *args, **kwargs):\n"
            f"        raise NotImplementedError({message!r})\n"
            if name[:1].isupper() else
            f"\n\ndef {name}(*args, **kwargs):\n    raise NotImplementedError({message!r})\n")


def prepare_root(root, package_dir, files, template, function_parts):
    """Build the grading root and return the notes.

    Parameters
    ----------
    root : folder to create; it receives ``tinyresnet/`` (a copy of ``package_dir``)
    package_dir : the release's package (or, for a check, the student's own)
    files : {relative path: bytes or None} from read_submission (None: keep what is there)
    template : {relative path: path of the release's version of that file}
    function_parts : {(relative path, qualified function name): part id} for the graded regions

    Returns [{"file", "parts", "message"}].
    """
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(package_dir, root / "tinyresnet",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    notes = []
    for rel in sorted(template):
        parts = sorted({p for (f, _), p in function_parts.items() if f == rel})
        data = files.get(rel, b"")
        if rel in files and data is None:
            shutil.copyfile(template[rel], root / rel)
            notes.append({"file": rel, "parts": parts, "message": (
                f"{rel} is missing from the submission: graded as the unimplemented release "
                f"version")})
            continue
        if data:
            (root / rel).write_bytes(data)
        source_bytes = (root / rel).read_bytes()
        try:
            source = source_bytes.decode("utf-8")
            compile(source, rel, "exec")
        except (UnicodeDecodeError, SyntaxError, ValueError) as e:
            where = f" at line {e.lineno}" if getattr(e, "lineno", None) else ""
            what = getattr(e, "msg", None) or str(e)
            shutil.copyfile(template[rel], root / rel)
            notes.append({"file": rel, "parts": parts, "message": (
                f"{rel} cannot be compiled ({type(e).__name__}{where}: {what}): graded as the "
                f"unimplemented release version")})
            continue
        present = required_names(source)
        wanted = required_names(Path(template[rel]).read_text(encoding="utf-8"))
        missing = sorted(wanted - present)
        if missing:
            stubs = "".join(_missing_stub(n, rel, function_parts.get((rel, n)), present)
                            for n in missing)
            (root / rel).write_text(source + stubs, encoding="utf-8")
            lost = sorted({p for (f, fn), p in function_parts.items()
                           if f == rel and (fn in missing or fn.split(".")[0] in missing)})
            notes.append({"file": rel, "parts": lost, "message": (
                f"{rel} lacks {', '.join(missing)} (deleted or renamed?): "
                + (f"part(s) {', '.join(lost)} cannot be graded" if lost else
                   "other code that uses it will fail"))})
    return notes
