"""Data-parallel training (tinyresnet/distributed.py, nn/sync_norm.py, functional/sync_norm.py)
under ``mpiexec -n 2``: each test launches the scripts of this folder as MPI jobs.

Skipped cleanly when mpi4py or mpiexec is missing (``pip install -e ".[mpi]"``; the ``dev`` extra
includes it).  Every job runs under a timeout, so a hang fails the test instead of stalling CI.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
TIMEOUT = 180  # seconds; a job that hangs is killed and fails its test

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec (pip install -e '.[mpi]')")


def _run(args, processes=2, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [MPIEXEC, "-n", str(processes), sys.executable, *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                            cwd=ROOT)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def _steps(tmp_path, name, mode, processes=1, **options):
    out = tmp_path / f"{name}.npz"
    flags = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}"
             for k, v in options.items()]
    _run([HERE / "digits_steps.py", f"--mode={mode}", f"--out={out}", *flags], processes)
    with np.load(out, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _relative_difference(a, b):
    """||a - b|| / ||a|| over every parameter at once."""
    num = sum(float(((a[k].astype(np.float64) - b[k]) ** 2).sum()) for k in a)
    return np.sqrt(num / sum(float((a[k].astype(np.float64) ** 2).sum()) for k in a))


def test_sync_bn_gradient_check_across_ranks():
    result = _run([HERE / "sync_bn_gradcheck.py"])
    assert result.stdout.startswith("ok"), result.stdout + result.stderr


def test_sync_bn_two_ranks_give_the_one_process_run_float64(tmp_path):
    whole = _steps(tmp_path, "whole", "whole", steps=4)
    parallel = _steps(tmp_path, "parallel", "parallel", processes=2, sync_bn=True, steps=4)
    assert _relative_difference(whole, parallel) <= 1e-10


def test_per_rank_bn_two_ranks_give_the_halves_reference_float64(tmp_path):
    halves = _steps(tmp_path, "halves", "halves", steps=4)
    parallel = _steps(tmp_path, "parallel", "parallel", processes=2, steps=4)
    assert _relative_difference(halves, parallel) <= 1e-10
    # and it is not the whole-batch run: per-rank statistics are a different computation
    whole = _steps(tmp_path, "whole", "whole", steps=4)
    assert _relative_difference(whole, parallel) > 1e-6


def test_sync_bn_two_ranks_give_the_one_process_run_float32(tmp_path):
    whole = _steps(tmp_path, "whole", "whole", steps=4, dtype="float32", lr=0.01)
    parallel = _steps(tmp_path, "parallel", "parallel", processes=2, sync_bn=True, steps=4,
                      dtype="float32", lr=0.01)
    assert _relative_difference(whole, parallel) <= 1e-6


@pytest.mark.slow
def test_sync_bn_float32_epoch_stays_as_close_to_exact_as_one_process_does(tmp_path):
    """After the 21 steps of an epoch, float32 training is chaotic: two one-process float32 runs
    that differ only in rounding (batches fed in reverse order, or another BLAS kernel) end ~1e-3
    apart, so no 1e-4 bound between two float32 runs can hold (docs/distributed.md).  What can be
    asked: the two-rank float32 run stays as close to the exact (float64) trajectory as the
    one-process float32 run does, within a factor that covers the chaos: the ratio of the two
    distances was 1.38 (SkylakeX kernel) and 0.67 (Sandybridge); 10 is allowed.  The bugs are the
    float64 tests' to catch (1e-10 after a few steps)."""
    options = {"steps": 21, "lr": 0.01}
    exact = _steps(tmp_path, "exact", "whole", dtype="float64", **options)
    whole = _steps(tmp_path, "whole", "whole", dtype="float32", **options)
    parallel = _steps(tmp_path, "parallel", "parallel", processes=2, sync_bn=True,
                      dtype="float32", **options)
    one_process = _relative_difference(exact, whole)
    assert _relative_difference(exact, parallel) <= 10 * one_process, one_process


def _model_state(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files
                if k.startswith("model/") and not k.endswith("num_batches_tracked")}


def test_cli_two_ranks_then_resumed_on_one_matches_one_process(tmp_path):
    common = ["-m", "tinyresnet", "train", "--smoke", "--no-progress", "--sync-bn",
              "--distributed", "--seed=3", "--lr=0.01", "--schedule=none"]  # epochs-independent
    two = _run([*common, "--epochs=1", f"--out={tmp_path / 'dp'}"], processes=2)
    # rank 0 alone logged and printed
    assert two.stderr.count("epoch 1/1") == 1 and two.stdout.count("test accuracy") == 1
    assert "2 on this machine, 1 threads each" in two.stderr  # the digits: one thread (auto)
    _run([*common, "--epochs=2", "--resume", f"--out={tmp_path / 'dp'}"], processes=1)
    _run([*common, "--epochs=2", f"--out={tmp_path / 'one'}"], processes=1)
    a, b = _model_state(tmp_path / "one" / "last.npz"), _model_state(tmp_path / "dp" / "last.npz")
    assert _relative_difference(a, b) <= 1e-4


def test_cli_refuses_a_batch_not_divisible_by_the_ranks_on_every_rank(tmp_path):
    result = _run(["-m", "tinyresnet", "train", "--distributed", "--batch-size=63",
                   f"--out={tmp_path}"], check=False)
    assert result.returncode != 0
    assert "--batch-size 63 (the global batch) is not divisible by the 2 processes" in \
        result.stderr


@pytest.mark.parametrize("how", ["raise", "kill", "uneven"])
def test_a_failing_rank_ends_every_rank_with_a_message(how):
    started = time.perf_counter()
    result = _run([HERE / "failing_rank.py", how], check=False)  # TIMEOUT bounds a hang
    assert result.returncode != 0
    assert "which it should not have" not in result.stdout
    if how == "raise":
        assert "rank 1 of 2: RuntimeError: rank 1 failed on purpose" in result.stderr
    elif how == "kill":
        assert "Killed" in result.stdout + result.stderr
    else:
        assert "ValueError: fit: the ranks' training loaders have different numbers of batches" \
            in result.stderr
    assert time.perf_counter() - started < TIMEOUT
