"""The benchmark script runs end to end on tiny shapes and writes its JSON (no timing is checked)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def _run(tmp_path, *extra):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--threads", "1", "--reps", "1", "--json", str(out),
         *extra],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_quick_benchmark_writes_every_kind_of_row(tmp_path):
    results, stdout = _run(tmp_path)
    groups = {row["group"] for row in results["rows"]}
    assert {"conv2d fwd+bwd", "max-pool fwd+bwd", "batch-norm fwd+bwd", "relu fwd+bwd",
            "training step"} <= groups
    assert all(row["tinyresnet_s"] > 0 for row in results["rows"])
    assert results["machine"]["threads"] == 1 and results["reps"] == 1
    (memory,) = results["memory"]
    assert memory["tinyresnet"]["peak_mib"] > 0
    has_torch = results["machine"]["torch"] is not None
    assert all((row["ratio"] is not None) == has_torch for row in results["rows"])
    assert ("torch" in memory) == has_torch
    assert any(line.startswith("group") and "ratio" in line for line in stdout.splitlines())


def test_without_torch_it_reports_tinyresnet_alone(tmp_path):
    results, _ = _run(tmp_path, "--no-torch", "--only", "ops")
    assert results["rows"] and all(row["torch_s"] is None and row["ratio"] is None
                                   for row in results["rows"])
    assert results["memory"] == []


def test_bad_arguments_are_refused():
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--only", "nothing"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--only takes a comma-separated subset" in proc.stderr


def test_cifar_pipeline_benchmark_runs_on_the_committed_slice(tmp_path):
    script = BENCH.parent / "bench_cifar_pipeline.py"
    out = tmp_path / "pipeline.json"
    proc = subprocess.run(
        [sys.executable, str(script), "--batch-size", "8", "--batches", "2", "--steps", "1",
         "--jpeg-images", "4", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert set(results["rows"]) == {"cifar batch", "imagenet per-image", "jpeg per-image",
                                    "resnet20 step"}
    assert results["rows"]["cifar batch"]["images"] == 16 and results["headroom"]["cpu"] > 0
    assert "headroom of the cifar pipeline" in proc.stdout


@pytest.mark.slow
def test_gpu_cifar10_script_runs_on_the_cpu_and_stops_on_its_budget(tmp_path):
    """benchmarks/gpu_cifar10.sh (issue 16's one prepared GPU run) on the committed CIFAR slice,
    --device cpu: it packs nothing, trains until its clock runs out, says where it stopped, and
    evaluates the checkpoint; then the degradation mode draws its figure."""
    root = BENCH.parents[1]
    packed = tmp_path / "slice.npz"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("OUT", None)
    subprocess.run([sys.executable, "-m", "tinyresnet", "data", "pack",
                    str(root / "tests" / "data" / "cifar10_slice"), str(packed)], check=True, env=env)
    script = root / "benchmarks" / "gpu_cifar10.sh"
    paper = subprocess.run(["bash", str(script), "paper", str(packed), "--device", "cpu",
                            "--budget", "75", "--out", str(tmp_path / "out")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert paper.returncode == 0, paper.stdout + paper.stderr
    assert "paper: stopped by the time budget" in paper.stdout, paper.stdout
    assert "checkpoint at epoch" in paper.stdout and "top-1" in paper.stdout
    degradation = subprocess.run(["bash", str(script), "degradation", str(packed), "--device", "cpu",
                                  "--budget", "100", "--epochs", "1", "--out", str(tmp_path / "d")],
                                 capture_output=True, text=True, timeout=300, env=env)
    assert degradation.returncode == 0, degradation.stdout + degradation.stderr
    assert (tmp_path / "d" / "degradation.png").stat().st_size > 10_000
