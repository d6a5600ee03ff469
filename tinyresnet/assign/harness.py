r"""The test-writing API of the assignments, run in two modes.

A test file (``assignments/A1/tests/public_tests.py``) is plain Python against the library's API::

    from tinyresnet import functional as F
    from tinyresnet.assign.harness import Suite

    suite = Suite()

    @suite.test("relu_backward", cases=[dict(N=4, D=6)])
    def relu_backward(t, N, D):
        x = t.input("x", lambda rng: rng.standard_normal((N, D)))
        y, cache = F.relu_forward(x)
        dy = t.input("dy", lambda rng: rng.standard_normal((N, D)))
        t.expect("dx", F.relu_backward(dy, cache), kind="gradient", hints={"N": N})

* **record** mode (the release generator, with the reference library imported as ``tinyresnet``):
  ``t.input`` draws the input from the case's seeded generator and stores it, ``t.expect`` stores
  the reference's value and evaluates the ``alternatives`` (known wrong answers, for diagnosis);
  everything goes into a ``.npz``.
* **check** mode (the checker and the grader, with the *student's* package imported as
  ``tinyresnet``): ``t.input`` loads the stored input, ``t.expect`` compares with the stored value
  and raises ``CaseFailure`` carrying a diagnosis (see ``diagnosis.compare``).

Inputs are stored, not regenerated, so a check never depends on the student's numpy drawing the
same random numbers.  A case is described to students by its parameters only (``describe``),
never by its code.
"""
import json
import re
import traceback
import zlib
from dataclasses import dataclass

import numpy as np

from .diagnosis import Finding, compare, diagnose_error

__all__ = [
    "Suite", "PartTest", "Context", "CaseFailure", "CaseSkipped", "CaseTimeout", "CaseResult", "describe", "case_seed",
    "run_case", "student_error",
]


class CaseTimeout(BaseException):
    """Raised by the grader's alarm when a case runs past its time limit.

    A BaseException, so that a student's ``except Exception`` cannot swallow it."""


class CaseSkipped(Exception):
    """A case the configuration turns off (a reduced configuration): it counts for nothing."""


class CaseFailure(AssertionError):
    """A student's result is wrong; ``finding`` says how (a diagnosis.Finding or text)."""

    def __init__(self, finding):
        super().__init__(str(finding))
        self.finding = finding


@dataclass
class PartTest:
    """One test function of one part, with the list of parameter sets it runs on."""

    part: str
    name: str
    fn: object
    cases: list
    record: bool = True


class Suite:
    """The tests of one file; ``@suite.test(part, cases=[...])`` registers a function."""

    def __init__(self):
        self.tests = []

    def test(self, part, cases=None, record=True):
        """Register ``fn(t, **params)`` for each params dict in ``cases`` (default one, empty).

        ``record=False`` marks a test that needs no reference data (training to an accuracy).
        """
        def register(fn):
            names = [t.name for t in self.tests]
            if fn.__name__ in names:
                raise ValueError(f"Suite: two tests named {fn.__name__!r}")
            self.tests.append(PartTest(part, fn.__name__, fn, list(cases or [{}]), record))
            return fn
        return register

    def for_part(self, part):
        return [t for t in self.tests if t.part == part]


_PHRASES = {
    "N": "batch {}",
    "C": "{} channel(s)",
    "filters": "{} filter(s)",
    "D": "{} feature(s)",
    "K": "{} classes",
    "k": "kernel {0}x{0}",
    "kernel_size": "kernel {0}x{0}",
    "stride": "stride {}",
    "padding": "padding {}",
    "planes": "{} planes",
    "inplanes": "{} input planes",
    "depth": "depth {}",
    "dtype": "{}",
}


def describe(params):
    """A case as students see it: 'batch 2, 3 channels, input 7x5 (non-square), stride 2, ...'."""
    words = []
    if "H" in params and "W" in params:
        H, W = params["H"], params["W"]
        words.append(f"input {H}x{W}" + (" (non-square)" if H != W else ""))
    for key, value in params.items():
        if key in ("H", "W", "about"):
            continue
        if key in _PHRASES:
            phrase = _PHRASES[key].format(value)
            words.append(phrase.replace("(s)", "" if value == 1 else "s"))
        elif isinstance(value, bool):
            words.append(key.replace("_", " ") if value else f"no {key.replace('_', ' ')}")
        else:
            words.append(f"{key.replace('_', ' ')} {value}")
    if params.get("about"):
        words.append(params["about"])
    return ", ".join(words) if words else "basic case"


def case_seed(seed, test_name, index):
    """The seed of one case: stable across runs and machines (no salted hash())."""
    return zlib.crc32(f"{seed}:{test_name}:{index}".encode()) & 0x7FFFFFFF


class Context:
    """What a test function receives as ``t``.

    Attributes: ``mode`` ("record" or "check"), ``rng`` (the case's generator, for ``t.input``
    makers), ``params`` (the part's configured params), ``tol(kind)``.
    """

    def __init__(self, mode, store, prefix, seed, tolerances, params):
        self.mode = mode
        self.store = store
        self.prefix = prefix
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.params = dict(params)
        self.notes = []
        self._tolerances = tolerances

    @property
    def recording(self):
        return self.mode == "record"

    def tol(self, kind):
        return float(self._tolerances.get(kind, self._tolerances.get("default", 1e-7)))

    def _key(self, *parts):
        return "::".join((self.prefix,) + parts)

    def _put(self, key, value):
        array = np.array(value)
        if array.dtype == object:
            raise TypeError(f"{self.prefix}: cannot store {key.split('::')[-1]!r}, a "
                            f"{type(value).__name__} (reference data holds arrays, no pickles)")
        self.store[key] = array

    def input(self, name, make):
        """An input array: ``make(rng)`` (or a given array) the first time it is recorded, the
        stored value otherwise.  Always a fresh copy, so an op that writes into it (batch norm's
        running statistics) changes nothing, and asking again gives the original."""
        key = self._key("in", name)
        if self.recording and key not in self.store:
            self._put(key, make(self.rng) if callable(make) else make)
        if key not in self.store:
            raise KeyError(f"reference data has no input {name!r} for {self.prefix}: rebuild it")
        return self.store[key].copy()

    def expect(self, name, value, kind="output", tol=None, hints=None, alternatives=None,
               masks=None, nonfinite=None, check_dtype=False):
        """The student's ``value`` must equal the reference's (relative error <= tolerance).

        alternatives : {signature id: callable returning the wrong answer}, evaluated with the
            reference when recording and stored; used for the diagnosis when checking.
        masks, hints, nonfinite, check_dtype : see ``diagnosis.compare``.
        """
        key = self._key("out", name)
        if self.recording:
            if value is None:  # e.g. the gradient of a parameter the backward does not reach
                self.store[key + "::none"] = np.array(True)
                return
            self._put(key, value)
            for sig, make in (alternatives or {}).items():
                self._put(self._key("alt", name, sig), make())
            return
        if key + "::none" in self.store:
            if value is not None and np.any(np.asarray(value, dtype=float) != 0):
                raise CaseFailure(Finding(name, f"{name} should be None (or zero): nothing reaches "
                                                f"it in this case", "not_none"))
            return
        alts = {sig: self.store[self._key("alt", name, sig)] for sig in (alternatives or {})
                if self._key("alt", name, sig) in self.store}
        finding = compare(name, value, self.store[key], tol if tol is not None else self.tol(kind),
                          hints=hints, alternatives=alts, masks=masks, nonfinite=nonfinite,
                          check_dtype=check_dtype)
        if finding is not None:
            raise CaseFailure(finding)

    def compare(self, name, value, kind="output", tol=None, **options):
        """Like ``expect`` but returns the Finding (or None) instead of raising, so a test can
        gather several before it explains them together.  Records, and returns None, in record
        mode."""
        try:
            self.expect(name, value, kind, tol, **options)
        except CaseFailure as e:
            return e.finding
        return None

    def expected(self, name):
        """The reference value an earlier ``expect``/``compare`` of ``name`` was checked against
        (None when recording, or when there is none)."""
        value = self.store.get(self._key("out", name))
        return None if self.recording or value is None else value.copy()

    def reference(self, name, value=None):
        """A reference value the test analyses itself (not compared here): ``value`` is stored
        when recording, and the stored one is returned when checking.  Arrays, or JSON-able data."""
        key = self._key("ref", name)
        if self.recording:
            if isinstance(value, (dict, list, tuple, str, int, float)) or value is None:
                self.store[key + "::json"] = np.array(json.dumps(value))
            else:
                self._put(key, value)
            return value
        if key + "::json" in self.store:
            return json.loads(str(self.store[key + "::json"]))
        return self.store[key].copy()

    def fail(self, summary, explanation="", signature=None):
        """Fail the case with a student-facing message (check mode only)."""
        if not self.recording:
            raise CaseFailure(Finding("check", summary, signature, explanation))

    def note(self, text):
        """A line the feedback shows even when the case passes (the last one given): what the
        test used, such as the data set it trained on."""
        self.notes.append(str(text))

    def skip(self, reason):
        """Leave this case out of the score (e.g. a heavy case in a reduced configuration)."""
        raise CaseSkipped(reason)

    def expect_same(self, name, value, explain=""):
        """Exact equality of JSON-able data (names, shapes, counts): recorded, then compared."""
        key = self._key("json", name)
        text = json.dumps(value, sort_keys=True, default=list)
        if self.recording:
            self.store[key] = np.array(text)
            return
        expected = json.loads(str(self.store[key]))
        got = json.loads(text)
        if got != expected:
            raise CaseFailure(Finding(name, f"{name} is wrong: {_first_difference(got, expected)}",
                                      "mismatch", explain))

    def check(self, condition, message, signature=None):
        """A plain assertion with a student-facing message."""
        if not self.recording and not condition:
            raise CaseFailure(Finding("check", message, signature))


def _first_difference(got, expected):
    if isinstance(got, dict) and isinstance(expected, dict):
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing:
            return f"missing {missing[0]!r} (expected {expected[missing[0]]!r}); {len(missing)} missing in all"
        if extra:
            return f"unexpected {extra[0]!r}; {len(extra)} unexpected in all"
        for k in expected:
            if got[k] != expected[k]:
                return f"{k!r} is {got[k]!r}, expected {expected[k]!r}"
    if isinstance(got, list) and isinstance(expected, list):
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                return f"item {i} is {a!r}, expected {b!r}"
        return f"{len(got)} items, expected {len(expected)}"
    return f"got {got!r}, expected {expected!r}"


@dataclass
class CaseResult:
    """The outcome of one case: status is pass, fail, not_implemented, blocked, error, timeout
    or skipped (left out of the score)."""

    part: str
    test: str
    index: int
    visibility: str
    about: str
    status: str
    message: str = ""
    signature: str = None

    def to_json(self):
        return dict(self.__dict__)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_STUB = re.compile(r"part '([^']+)'")


def student_error(exc, editable):
    """One line for an exception raised by student code: the type, the message (addresses
    removed, at most 400 characters) and the deepest frame in a file the student edits.

    Frames of test files are never shown."""
    message = _ADDRESS.sub("", str(exc)).strip()
    if len(message) > 400:
        message = message[:400] + " ..."
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        rel = _relative_editable(frame.filename, editable)
        if rel is not None:
            where = f" (at {rel}:{frame.lineno}, in {frame.name})"
            break
    return f"{type(exc).__name__}: {message}{where}"


def _relative_editable(filename, editable):
    path = filename.replace("\\", "/")
    for rel in editable:
        if path.endswith("/" + rel) or path == rel:
            return rel
    return None


def run_case(test, index, mode, store, seed, tolerances, params, visibility="public",
             editable=(), on_start=None):
    """Run one case of ``test``.  Record mode lets exceptions through (the reference must pass);
    check mode returns a CaseResult for whatever happened."""
    case = dict(test.cases[index])
    about = describe(case)
    case.pop("about", None)
    prefix = f"{test.name}[{index}]"
    s = case_seed(seed, test.name, index)
    import tinyresnet  # the reference when recording, the student's package when checking

    tinyresnet.manual_seed(s)
    t = Context(mode, store, prefix, s, tolerances, params)
    if mode == "record":
        try:
            test.fn(t, **case)
        except CaseSkipped:
            pass
        return None
    result = CaseResult(test.part, test.name, index, visibility, about, "pass")
    try:
        if on_start is not None:
            on_start()
        test.fn(t, **case)
        if t.notes:
            result.message = t.notes[-1]
    except CaseFailure as e:
        result.status, result.message = "fail", str(e.finding)
        result.signature = getattr(e.finding, "signature", None)
    except CaseSkipped as e:
        result.status, result.message = "skipped", str(e)
    except NotImplementedError as e:
        stub = _STUB.search(str(e))
        if stub and stub.group(1) != test.part:
            result.status = "blocked"
            result.message = (f"this part calls part '{stub.group(1)}', which is not implemented "
                              f"yet: {student_error(e, editable)}")
        else:
            result.status, result.message = "not_implemented", student_error(e, editable)
    except CaseTimeout as e:
        # where the alarm found the code running: the loop may sit in another part's function
        result.status, result.message = "timeout", student_error(e, editable).split(": ", 1)[1]
    except SystemExit as e:
        result.status, result.message = "error", f"your code called exit ({e.code!r})"
    except MemoryError:
        result.status, result.message = "error", "MemoryError: your code ran out of memory"
    except RecursionError as e:
        result.status, result.message = "error", student_error(e, editable)
    except Exception as e:  # a student's bug of any kind: report it, never crash the grading
        finding = diagnose_error(e)
        if finding is not None:  # a known bug that shows as an exception: a diagnosed failure
            finding.summary = student_error(e, editable)
            result.status, result.message, result.signature = "fail", str(finding), finding.signature
        else:
            result.status, result.message = "error", student_error(e, editable)
    return result
