#!/usr/bin/env bash
# The one script a GPU machine runs for issue 6: correctness first, then the figures.
#   bash benchmarks/gpu_check.sh            (from the repository root; CuPy and a GPU needed)
# Expected: every test below passes with none skipped, then two tables (TF32 off, TF32 on) whose
# ratio column is tinyresnet / PyTorch on the same GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=.
python3 -c "from tinyresnet import backend; assert backend.cupy_available(), 'no CuPy/GPU'"
python3 -m pytest -q -m "gpu or not gpu" -rs tests/gpu tests/optim tests/data/test_loader.py tests/test_backend.py
python3 benchmarks/bench_gpu.py --json gpu_tf32_off.json
python3 benchmarks/bench_gpu.py --tf32 --json gpu_tf32_on.json
