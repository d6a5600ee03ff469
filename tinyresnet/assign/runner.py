"""Run one submission's tests in a worker subprocess, with a watchdog, and score the parts.

The worker (``worker.py``) streams one JSON line per event.  This side watches them: a case that
runs past its time limit plus a grace period, or an import that never ends, gets the process
killed (an alarm cannot interrupt a long NumPy call); a worker that dies (a segfault, ``os._exit``)
is noticed.  Either way the case it was on is recorded as a zero with the reason, the remaining
cases of that part are skipped, and a fresh worker carries on with the next parts.  Grading
therefore always finishes, and a part's points depend only on its own cases.

Scores: a part earns ``points * passed / cases`` over the cases of the manifest that were run
(public ones for a check, public and hidden for grading).
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PartResult", "SubmissionResult", "run_submission", "worker_env"]

WORKER = Path(__file__).resolve().parent / "worker.py"
_GRACE_S = 5.0
_IMPORT_LIMIT_S = 60.0
_POLL_S = 0.02


@dataclass(repr=False)
class PartResult:
    """A part's score and its cases (dicts as the worker wrote them, plus 'not run' fill-ins)."""

    id: str
    title: str
    section: str
    points: float
    score: float
    cases: list
    notes: list = field(default_factory=list)
    manual: bool = False

    def __repr__(self):
        if self.manual:
            return f"<part {self.id}: {self.points:g} points, graded by hand>"
        return f"<part {self.id}: {self.score:g} / {self.points:g}, {self.status}>"

    @property
    def counted(self):
        """The cases that count (skipped ones do not)."""
        return [c for c in self.cases if c["status"] != "skipped"]

    @property
    def passed(self):
        return sum(c["status"] == "pass" for c in self.counted)

    @property
    def status(self):
        if self.manual:
            return "manual"
        if self.counted and self.passed == len(self.counted):
            return "ok"
        statuses = {c["status"] for c in self.counted}
        if statuses <= {"not_implemented", "blocked", "not_run"}:
            return "not implemented"
        return "partial" if self.score > 0 else "wrong"


@dataclass(repr=False)
class SubmissionResult:
    """Everything known about one submission after its tests ran.

    ``answers`` : the written answers found in its notebook (``answers.Answers``; grading only);
    ``read_error`` : why the submission could not be read at all ('' when it could).
    In a notebook it shows as a compact table of its parts (``_repr_html_``); its ``repr`` is one
    line (the checker has printed the details already).
    """

    name: str
    assignment: str
    parts: list
    notes: list = field(default_factory=list)
    log: str = ""
    answers: object = None
    read_error: str = ""

    def __repr__(self):
        graded = [p for p in self.parts if not p.manual]
        ok = sum(p.status == "ok" for p in graded)
        return (f"<{self.assignment} {self.name}: {self.score:g} / {self.max_score:g}, "
                f"{ok} of {len(graded)} parts ok>")

    def _repr_html_(self):
        from .report import result_html

        return result_html(self)

    @property
    def score(self):
        return round(sum(p.score for p in self.parts if not p.manual), 2)

    @property
    def max_score(self):
        return sum(p.points for p in self.parts if not p.manual)

    def part(self, part_id):
        return next(p for p in self.parts if p.id == part_id)


def worker_env():
    """The worker's environment: no PYTHONPATH leaking the reference in, one BLAS thread (fair on
    a shared machine, and the same sums in the same order every run), a fixed hash seed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    return env


def _read_new(path, offset):
    """Complete lines appended to ``path`` since ``offset``; returns (records, new offset)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    records = [json.loads(line) for line in chunk[:end].splitlines() if line.strip()]
    return records, offset + end


def _run_once(spec, workdir, run_index, limits, import_limit):
    """Start one worker; returns (records, exit status, the key of a case it was stopped in)."""
    out = workdir / f"results-{run_index}.jsonl"
    spec = dict(spec, out=str(out))
    spec_path = workdir / f"spec-{run_index}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    log = open(workdir / f"worker-{run_index}.log", "wb")
    process = subprocess.Popen([sys.executable, str(WORKER), str(spec_path)], cwd=spec["root"],
                               env=worker_env(), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    records, offset = [], 0
    started = time.monotonic()
    current, current_since, killed_in = None, None, None
    while True:
        status = process.poll()
        new, offset = _read_new(out, offset)
        for r in new:
            if r["event"] == "start":
                current, current_since = r, time.monotonic()
            elif r["event"] == "case":
                current = None
        records += new
        if status is not None:
            break
        now = time.monotonic()
        if current is not None and now - current_since > limits[current["part"]] + _GRACE_S:
            killed_in = current
        elif current is None and not any(r["event"] in ("start", "case") for r in records) \
                and now - started > import_limit + _GRACE_S:
            killed_in = {"key": None, "part": None}
        if killed_in is not None:
            process.kill()
            process.wait()
            break
        time.sleep(_POLL_S)
    log.close()
    new, offset = _read_new(out, offset)
    records += new
    if killed_in is None and current is not None:
        killed_in = dict(current, crashed=True)
    return records, process.returncode, killed_in


def run_submission(name, assignment, manifest, root, suites, editable, modules, template,
                   workdir, visibilities=("public", "hidden"), notes=(), part_ids=None):
    """Grade one prepared grading root; returns a SubmissionResult.

    manifest : the build's manifest (its ``cases`` list: key, part, visibility, about)
    suites : [{"path", "data", "visibility"}] test files and their reference data
    notes : [{"file", "parts", "message"}] found while preparing the root (missing files, ...)
    part_ids : only these parts (default all graded parts)
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    graded = [p for p in assignment.graded_parts if part_ids is None or p.id in part_ids]
    limits = {p.id: p.time_limit_s for p in graded}
    spec = {
        "root": str(root), "template": {k: str(v) for k, v in template.items()},
        "editable": list(editable), "modules": list(modules),
        "suites": [s for s in suites if s["visibility"] in visibilities],
        "seed": assignment.seed, "tolerances": assignment.tolerances,
        # importing numpy and the package takes seconds on a loaded machine: a generous limit
        "import_time_limit_s": (assignment.import_time_limit_s
                                or max([_IMPORT_LIMIT_S] + list(limits.values()))),
    }
    cases, events, skip, stopped_parts, log = {}, [], set(), {}, ""
    for run_index in range(len(graded) + 2):
        remaining = [p for p in graded if p.id not in stopped_parts]
        spec_run = dict(spec, skip=sorted(skip), parts=[
            {"id": p.id, "time_limit_s": p.time_limit_s, "params": p.params} for p in remaining])
        records, returncode, killed_in = _run_once(spec_run, workdir, run_index, limits,
                                                    spec["import_time_limit_s"])
        for r in records:
            if r["event"] == "case":
                cases[r["key"]] = r
                skip.add(r["key"])
            elif r["event"] in ("import_failed", "file_replaced") and r not in events:
                events.append(r)
        if killed_in is None or killed_in.get("part") is None:
            if killed_in is not None:  # the import itself hung or crashed
                events.append({"event": "import_failed", "file": None, "message": (
                    "the grading process had to be stopped while importing your package "
                    "(a time limit, or a crash)")})
            elif not any(r["event"] == "done" for r in records):
                events.append({"event": "import_failed", "file": None, "message": (
                    f"the grading process stopped unexpectedly (exit code {returncode}) before "
                    f"running any test; the instructor has its log")})
                log = (workdir / f"worker-{run_index}.log").read_text(errors="replace")[-8000:]
            break
        key, part = killed_in["key"], killed_in["part"]
        if killed_in.get("crashed"):
            reason = (f"the grading process died during this case (exit code {returncode}): "
                      f"a crash, or your code exited the interpreter")
            status = "error"
        else:
            reason = (f"time limit of {limits[part]:g} s exceeded and the case did not stop: "
                      f"the grading process was killed (an infinite loop, or a huge computation?)")
            status = "timeout"
        cases[key] = {"key": key, "part": part, "status": status, "message": reason}
        skip.add(key)
        stopped_parts[part] = key
    result = _score(name, assignment, manifest, cases, events, notes, visibilities, part_ids,
                    stopped_parts)
    result.log = log
    return result


def _score(name, assignment, manifest, cases, events, notes, visibilities, part_ids, stopped):
    global_notes = [e["message"] for e in events if e["event"] == "import_failed"]
    file_notes = [{"file": e["file"], "message": e["message"]} for e in events
                  if e["event"] == "file_replaced"]
    parts = []
    for part in assignment.parts:
        if part_ids is not None and part.id not in part_ids:
            continue
        if part.manual:
            parts.append(PartResult(part.id, part.title, part.section, part.points, 0.0, [],
                                    manual=True))
            continue
        expected = [c for c in manifest["cases"]
                    if c["part"] == part.id and c["visibility"] in visibilities]
        results = []
        for c in expected:
            r = cases.get(c["key"])
            if r is None:
                why = ("not run: an earlier case of this part stopped the grading process"
                       if part.id in stopped else
                       "not run: " + (global_notes[0] if global_notes else "the grader stopped"))
                r = {"status": "not_run", "message": why}
            results.append(dict(r, key=c["key"], visibility=c["visibility"], about=c["about"],
                                part=part.id))
        counted = [r for r in results if r["status"] != "skipped"]
        passed = sum(r["status"] == "pass" for r in counted)
        score = round(part.points * passed / len(counted), 2) if counted else 0.0
        part_files = {n["file"] for n in notes if part.id in n.get("parts", ())}
        part_notes = [n["message"] for n in notes if part.id in n.get("parts", ())]
        part_notes += [n["message"] for n in file_notes
                       if n["file"] in part_files or n["file"] in _files_of(manifest, part.id)]
        parts.append(PartResult(part.id, part.title, part.section, part.points, score, results,
                                part_notes))
    return SubmissionResult(name, assignment.id, parts, global_notes)


def _files_of(manifest, part_id):
    return {r["file"] for r in manifest["regions"] if r["part"] == part_id}
