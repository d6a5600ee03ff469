"""Smoke test of examples/degradation.py (the experiment itself is a script, recorded in
docs/gradient-flow.md): tiny settings, every output written."""
import importlib.util
import json
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "degradation.py"


def test_degradation_script_runs_and_writes_its_results(tmp_path):
    spec = importlib.util.spec_from_file_location("degradation", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "degradation"
    results = script.main(["--depths", "8", "8", "--seeds", "0", "--epochs", "2",
                           "--train-subset", "128", "--out", str(out)])
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["runs"] == json.loads(json.dumps(results["runs"]))
    assert [(r["depth"], r["skip"]) for r in saved["runs"]] == [(8, False), (8, True)] * 2
    for run in saved["runs"]:
        assert [s["seed"] for s in run["seeds"]] == [0]
        for curves in run["seeds"]:
            assert len(curves["train_loss"]) == 2 and np.all(np.isfinite(curves["train_loss"]))
            assert all(0 <= e <= 1 for e in curves["test_error"])
    assert out.with_suffix(".png").stat().st_size > 0
    # Same seed, same data order and initialisation: the two depth-8 plain runs agree exactly.
    assert saved["runs"][0]["seeds"][0]["train_loss"] == saved["runs"][2]["seeds"][0]["train_loss"]
    script.main(["--out", str(out), "--replot"])
