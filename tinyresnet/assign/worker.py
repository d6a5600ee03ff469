"""The grading subprocess: import a student's package, run test cases, stream results.

Run as a *script* (``python .../tinyresnet/assign/worker.py spec.json``), never as
``-m tinyresnet.assign.worker``: importing this module through the package would import the
student's ``tinyresnet/__init__.py`` (and a syntax error in it) before anything could guard it.
The worker loads its two helpers, ``harness`` and ``diagnosis``, from its own folder under a
private package name, then puts the grading root (a copy of the release with the student's files
in it) first on ``sys.path``, so that ``import tinyresnet`` is the student's package.

Importing is guarded: a student file whose import raises or never ends (a time limit) is replaced
by the release's version of it (the stubs), noted, and the import retried, so one broken file
costs only its own parts.  Each case then runs under a wall-clock alarm; its result is appended
to the results file as one JSON line, flushed at once, so that the parent process keeps every
finished result even if it has to kill this one (a hang inside C code ignores the alarm).

The spec (JSON) holds: root, template ({relative path: pristine copy}), editable, modules,
suites ([{path, data, visibility}]), parts ([{id, time_limit_s, params}]), seed, tolerances,
skip ([case keys already done]), out, import_time_limit_s.
"""
import importlib
import importlib.util
import json
import shutil
import signal
import sys
import types
from contextlib import contextmanager
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _runtime():
    """harness and diagnosis from this folder, as package ``_tinyresnet_assign``."""
    package = types.ModuleType("_tinyresnet_assign")
    package.__path__ = [str(_HERE)]
    sys.modules["_tinyresnet_assign"] = package
    return importlib.import_module("_tinyresnet_assign.harness")


def _purge_package():
    for name in [m for m in sys.modules if m == "tinyresnet" or m.startswith("tinyresnet.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@contextmanager
def _alarm(seconds, harness, what):
    def ring(signum, frame):
        raise harness.CaseTimeout(
            f"time limit of {seconds:g} s exceeded while {what} (an infinite loop, or far too "
            f"slow an implementation?)")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _blamed_file(exc, editable):
    """The editable file an import error came from: a SyntaxError's file, else the deepest frame."""
    import traceback

    candidates = []
    if isinstance(exc, SyntaxError) and exc.filename:
        candidates.append(exc.filename)
    candidates += [f.filename for f in reversed(traceback.extract_tb(exc.__traceback__))]
    for filename in candidates:
        path = filename.replace("\\", "/")
        for rel in editable:
            if path.endswith("/" + rel):
                return rel
    return None


def _import_package(spec, harness, emit):
    """Import the student's package (and the modules that hold parts), repairing broken files."""
    root = Path(spec["root"])
    editable, template = spec["editable"], spec.get("template", {})
    restored = set()
    while True:
        _purge_package()
        try:
            with _alarm(spec.get("import_time_limit_s", 20.0), harness, "importing your package"):
                importlib.import_module("tinyresnet")
                for module in spec["modules"]:
                    importlib.import_module(module)
            return True
        except BaseException as e:  # SyntaxError, NameError at import, a time-out: all repairable
            if isinstance(e, KeyboardInterrupt):
                raise
            message = harness.student_error(e, editable)
            rel = _blamed_file(e, editable)
            if rel is None or rel in restored or rel not in template:
                emit({"event": "import_failed", "file": rel, "message": message})
                return False
            shutil.copyfile(template[rel], root / rel)
            restored.add(rel)
            emit({"event": "file_replaced", "file": rel,
                  "message": f"importing {rel} failed ({message}); it was graded as the "
                             f"unimplemented release version"})


class _LazyStore(dict):
    """The reference data, each array read from the .npz on first use (a case needs only its
    own; reading a large bundle whole would cost every worker start a second)."""

    def __init__(self, npz):
        super().__init__()
        self._npz, self._keys = npz, set(npz.files)

    def __contains__(self, key):
        return key in self._keys

    def __missing__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        value = self[key] = self._npz[key]
        return value

    def get(self, key, default=None):
        return self[key] if key in self._keys else default


def _load_suite(path, visibility):
    spec = importlib.util.spec_from_file_location(f"_assign_{visibility}_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.suite


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    # The script's own folder must not shadow anything; the student's package comes first.
    sys.path[0] = spec["root"]
    harness = _runtime()
    import numpy as np

    out = open(spec["out"], "a", encoding="utf-8")

    def emit(record):
        out.write(json.dumps(record) + "\n")
        out.flush()

    if not _import_package(spec, harness, emit):
        emit({"event": "done"})
        return 0
    suites = []
    for entry in spec["suites"]:
        store = _LazyStore(np.load(entry["data"], allow_pickle=False))
        suites.append((_load_suite(entry["path"], entry["visibility"]), store, entry["visibility"]))
    skip = set(spec.get("skip", []))
    editable = spec["editable"]
    for part in spec["parts"]:
        timed_out = False  # after one time-out the rest of the part is not run: loops repeat
        for suite, store, visibility in suites:
            for test in suite.for_part(part["id"]):
                for index in range(len(test.cases)):
                    key = f"{visibility}:{test.name}[{index}]"
                    if key in skip:
                        continue
                    if timed_out:
                        emit({"event": "case", "key": key, "part": part["id"], "status": "not_run",
                              "message": "not run: an earlier case of this part exceeded the "
                                         "time limit"})
                        continue
                    emit({"event": "start", "key": key, "part": part["id"]})
                    try:
                        with _alarm(part["time_limit_s"], harness, "running this case"):
                            result = harness.run_case(
                                test, index, "check", store, spec["seed"], spec["tolerances"],
                                part.get("params", {}), visibility, editable)
                    except harness.CaseTimeout as e:  # the alarm rang just outside the case
                        result = harness.CaseResult(part["id"], test.name, index, visibility,
                                                    harness.describe(test.cases[index]),
                                                    "timeout", str(e))
                    record = result.to_json()
                    record.update(event="case", key=key)
                    emit(record)
                    timed_out = result.status == "timeout"
    emit({"event": "done"})
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
