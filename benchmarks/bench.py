"""Time tinyresnet against PyTorch on the CPU, side by side, in one process and one run.

    python3 benchmarks/bench.py [--quick] [--json out.json] [--threads N] [--reps R]
                                [--only ops,steps,memory] [--no-torch]

Rows:
  * conv2d forward+backward on the ResNet-50 layer shapes (batch 8, 224x224 input) and the CIFAR
    ResNet shapes (batch 128, 32x32 input);
  * max-pool 3x3/2, batch-norm and ReLU forward+backward;
  * whole training steps (forward, loss, backward, SGD step) of ResNet-50 and ResNet-18 (224x224,
    batch 8) and CIFAR ResNet-56 (32x32, batch 128), when ``tinyresnet.models`` exists;
  * the peak resident memory of each training step, each side measured in its own subprocess.

Each row reports the median of ``--reps`` repetitions after warm-up; the two sides alternate
repetition by repetition, so that a load spike from another process hits both.  The ratio is
tinyresnet / PyTorch: below 1 tinyresnet is faster.  Both sides run with the same thread count
(``torch.set_num_threads`` and the BLAS/OpenMP pools through threadpoolctl).  PyTorch is optional:
without it only tinyresnet's times are reported.  ``--quick`` uses tiny shapes (a smoke run).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tinyresnet.functional as F  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark then reports tinyresnet alone
    torch = None


# ---- shapes -------------------------------------------------------------------------------------
# (name, N, C, H, W, F, kernel, stride, padding).  ResNet-50 as torchvision builds it (v1.5: the
# stride of a downsampling bottleneck sits on its 3x3 conv), at batch 8 and 224x224 input.
RESNET50_CONVS = [
    ("stem 7x7/2 3->64 @224", 8, 3, 224, 224, 64, 7, 2, 3),
    ("l1 1x1 64->64 @56", 8, 64, 56, 56, 64, 1, 1, 0),
    ("l1 3x3 64->64 @56", 8, 64, 56, 56, 64, 3, 1, 1),
    ("l1 1x1 64->256 @56", 8, 64, 56, 56, 256, 1, 1, 0),
    ("l1 1x1 256->64 @56", 8, 256, 56, 56, 64, 1, 1, 0),
    ("l2 1x1 256->128 @56", 8, 256, 56, 56, 128, 1, 1, 0),
    ("l2 3x3/2 128->128 @56", 8, 128, 56, 56, 128, 3, 2, 1),
    ("l2 1x1/2 256->512 @56 (down)", 8, 256, 56, 56, 512, 1, 2, 0),
    ("l2 1x1 128->512 @28", 8, 128, 28, 28, 512, 1, 1, 0),
    ("l2 1x1 512->128 @28", 8, 512, 28, 28, 128, 1, 1, 0),
    ("l2 3x3 128->128 @28", 8, 128, 28, 28, 128, 3, 1, 1),
    ("l3 1x1 512->256 @28", 8, 512, 28, 28, 256, 1, 1, 0),
    ("l3 3x3/2 256->256 @28", 8, 256, 28, 28, 256, 3, 2, 1),
    ("l3 1x1/2 512->1024 @28 (down)", 8, 512, 28, 28, 1024, 1, 2, 0),
    ("l3 1x1 256->1024 @14", 8, 256, 14, 14, 1024, 1, 1, 0),
    ("l3 1x1 1024->256 @14", 8, 1024, 14, 14, 256, 1, 1, 0),
    ("l3 3x3 256->256 @14", 8, 256, 14, 14, 256, 3, 1, 1),
    ("l4 1x1 1024->512 @14", 8, 1024, 14, 14, 512, 1, 1, 0),
    ("l4 3x3/2 512->512 @14", 8, 512, 14, 14, 512, 3, 2, 1),
    ("l4 1x1/2 1024->2048 @14 (down)", 8, 1024, 14, 14, 2048, 1, 2, 0),
    ("l4 1x1 512->2048 @7", 8, 512, 7, 7, 2048, 1, 1, 0),
    ("l4 1x1 2048->512 @7", 8, 2048, 7, 7, 512, 1, 1, 0),
    ("l4 3x3 512->512 @7", 8, 512, 7, 7, 512, 3, 1, 1),
]
# CIFAR ResNet (He et al. 2016, section 4.2) at batch 128: 16/32/64 channels on 32/16/8 pixels.
CIFAR_CONVS = [
    ("cifar stem 3x3 3->16 @32", 128, 3, 32, 32, 16, 3, 1, 1),
    ("cifar 3x3 16->16 @32", 128, 16, 32, 32, 16, 3, 1, 1),
    ("cifar 3x3/2 16->32 @32", 128, 16, 32, 32, 32, 3, 2, 1),
    ("cifar 3x3 32->32 @16", 128, 32, 16, 16, 32, 3, 1, 1),
    ("cifar 3x3/2 32->64 @16", 128, 32, 16, 16, 64, 3, 2, 1),
    ("cifar 3x3 64->64 @8", 128, 64, 8, 8, 64, 3, 1, 1),
]
QUICK_CONVS = [
    ("quick 3x3 8->8 @16", 4, 8, 16, 16, 8, 3, 1, 1),
    ("quick 1x1/2 8->16 @16", 4, 8, 16, 16, 16, 1, 2, 0),
    ("quick 7x7/2 3->8 @32", 2, 3, 32, 32, 8, 7, 2, 3),
]
# (name, N, C, H, W)
POOL_SHAPES = [("maxpool 3x3/2 64 @112", 8, 64, 112, 112)]
NORM_SHAPES = [
    ("batchnorm 64 @112 (r50 stem)", 8, 64, 112, 112),
    ("batchnorm 256 @56 (r50 l1)", 8, 256, 56, 56),
    ("batchnorm 16 @32 (cifar)", 128, 16, 32, 32),
]
RELU_SHAPES = [("relu 64 @112", 8, 64, 112, 112), ("relu 16 @32 (cifar)", 128, 16, 32, 32)]
QUICK_POOL = [("quick maxpool 3x3/2 8 @16", 4, 8, 16, 16)]
QUICK_NORM = [("quick batchnorm 8 @16", 4, 8, 16, 16)]
QUICK_RELU = [("quick relu 8 @16", 4, 8, 16, 16)]


# ---- timing -------------------------------------------------------------------------------------
# Wall time by default.  ``--timer cpu`` counts this process's CPU time instead: with --threads 1 it
# is the work each side does, and stays meaningful on a machine other jobs keep busy.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def channel_major(a):
    """The same values with (C, N, H, W) memory: what tinyresnet's layers hand each other."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def time_side_by_side(fns, reps, warmup=1, settle=False):
    """Median time of each callable in ``fns`` (a dict), alternating them rep by rep.

    With ``settle``, each timed call follows an untimed call of the same side: a single op
    allocates and frees arrays of tens of megabytes, and without it each side would pay for the
    memory the other just handed back to the OS (page faults on first touch).
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {key: [] for key in fns}
    for _ in range(reps):
        for key, fn in fns.items():
            if settle:
                fn()
            start = clock()
            fn()
            times[key].append(clock() - start)
    return {key: statistics.median(t) for key, t in times.items()}


def _row(group, name, medians, flops=None):
    row = {"group": group, "name": name, "tinyresnet_s": medians["tinyresnet"]}
    row["torch_s"] = medians.get("torch")
    row["ratio"] = medians["tinyresnet"] / row["torch_s"] if row["torch_s"] else None
    if flops:
        row["tinyresnet_gflops"] = flops / medians["tinyresnet"] / 1e9
    return row


# ---- op rows ------------------------------------------------------------------------------------
def conv_row(shape, reps, rng, use_torch):
    name, N, C, H, W, Fo, k, s, p = shape
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((Fo, C, k, k), dtype=np.float32) * np.float32((C * k * k) ** -0.5)
    Ho, Wo = F.conv_output_shape(x.shape, k, s, p)
    dy = rng.standard_normal((N, Fo, Ho, Wo), dtype=np.float32)
    # Each side gets the memory order its own layers produce: channel-major for tinyresnet, plain
    # NCHW for PyTorch.  A stem convolution reads the image itself, NCHW on both sides.
    x_tiny = x if "stem" in name else channel_major(x)
    dy_tiny = channel_major(dy)

    def tiny():
        y, cache = F.conv2d_forward(x_tiny, w, None, s, p)
        F.conv2d_backward(dy_tiny, cache)

    fns = {"tinyresnet": tiny}
    if use_torch:
        xt, wt, dyt = (torch.from_numpy(a) for a in (x, w, dy))
        xt.requires_grad_(True)
        wt.requires_grad_(True)

        def reference():
            xt.grad = wt.grad = None
            torch.nn.functional.conv2d(xt, wt, None, s, p).backward(dyt)

        fns["torch"] = reference
    # forward, dx and dw are each one (F, K) x (K, P) product's worth of multiply-adds
    flops = 3 * 2 * N * Fo * Ho * Wo * C * k * k
    return _row("conv2d fwd+bwd", name, time_side_by_side(fns, reps, settle=True), flops)


def maxpool_row(shape, reps, rng, use_torch):
    name, N, C, H, W = shape
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    Ho, Wo = F.conv_output_shape(x.shape, 3, 2, 1)
    dy = rng.standard_normal((N, C, Ho, Wo), dtype=np.float32)
    x_tiny, dy_tiny = channel_major(x), channel_major(dy)

    def tiny():
        y, cache = F.maxpool2d_forward(x_tiny, 3, 2, 1)
        F.maxpool2d_backward(dy_tiny, cache)

    fns = {"tinyresnet": tiny}
    if use_torch:
        xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def reference():
            xt.grad = None
            torch.nn.functional.max_pool2d(xt, 3, 2, 1).backward(dyt)

        fns["torch"] = reference
    return _row("max-pool fwd+bwd", name, time_side_by_side(fns, reps, settle=True))


def batchnorm_row(shape, reps, rng, use_torch):
    name, N, C, H, W = shape
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    dy = rng.standard_normal((N, C, H, W), dtype=np.float32)
    gamma, beta = np.ones(C, np.float32), np.zeros(C, np.float32)
    running_mean, running_var = np.zeros(C, np.float32), np.ones(C, np.float32)

    x_tiny, dy_tiny = channel_major(x), channel_major(dy)

    def tiny():
        y, cache = F.batchnorm2d_forward(x_tiny, gamma, beta, running_mean, running_var, True,
                                         0.1, 1e-5)
        F.batchnorm2d_backward(dy_tiny, cache)

    fns = {"tinyresnet": tiny}
    if use_torch:
        xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
        gt = torch.from_numpy(gamma.copy()).requires_grad_(True)
        bt = torch.from_numpy(beta.copy()).requires_grad_(True)
        rm, rv = torch.zeros(C), torch.ones(C)

        def reference():
            xt.grad = gt.grad = bt.grad = None
            torch.nn.functional.batch_norm(xt, rm, rv, gt, bt, True, 0.1, 1e-5).backward(dyt)

        fns["torch"] = reference
    return _row("batch-norm fwd+bwd", name, time_side_by_side(fns, reps, settle=True))


def relu_row(shape, reps, rng, use_torch):
    name, N, C, H, W = shape
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    dy = rng.standard_normal((N, C, H, W), dtype=np.float32)

    x_tiny, dy_tiny = channel_major(x), channel_major(dy)

    def tiny():
        y, cache = F.relu_forward(x_tiny)
        F.relu_backward(dy_tiny, cache)

    fns = {"tinyresnet": tiny}
    if use_torch:
        xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def reference():
            xt.grad = None
            torch.relu(xt).backward(dyt)

        fns["torch"] = reference
    return _row("relu fwd+bwd", name, time_side_by_side(fns, reps, settle=True))


def op_rows(quick, reps, use_torch, log, only_rows=None):
    rng = np.random.default_rng(0)
    plan = [
        (conv_row, QUICK_CONVS if quick else RESNET50_CONVS + CIFAR_CONVS),
        (maxpool_row, QUICK_POOL if quick else POOL_SHAPES),
        (batchnorm_row, QUICK_NORM if quick else NORM_SHAPES),
        (relu_row, QUICK_RELU if quick else RELU_SHAPES),
    ]
    rows = []
    for bench, shapes in plan:
        for shape in shapes:
            if only_rows and only_rows not in shape[0]:
                continue
            rows.append(bench(shape, reps, rng, use_torch))
            log(format_row(rows[-1]))
    return rows


def conv_geomean(rows):
    """Geometric mean of the conv2d rows' ratios (issue 15's conv target), None without PyTorch."""
    ratios = [r["ratio"] for r in rows if r["group"] == "conv2d fwd+bwd" and r.get("ratio")]
    return statistics.geometric_mean(ratios) if ratios else None


# ---- reporting ----------------------------------------------------------------------------------
def _ms(seconds):
    return f"{seconds * 1e3:10.2f}" if seconds is not None else f"{'-':>10}"


def format_header():
    return f"{'group':<20} {'row':<32} {'tiny ms':>10} {'torch ms':>10} {'ratio':>6} {'GFLOP/s':>8}"


def format_row(row):
    ratio = f"{row['ratio']:6.2f}" if row.get("ratio") else f"{'-':>6}"
    gflops = f"{row['tinyresnet_gflops']:8.1f}" if row.get("tinyresnet_gflops") else ""
    return (f"{row['group']:<20} {row['name']:<32} {_ms(row['tinyresnet_s'])} "
            f"{_ms(row.get('torch_s'))} {ratio} {gflops}")


def format_memory(row):
    tiny, ref = row["tinyresnet"], row.get("torch")
    line = (f"{'peak RSS (MiB)':<20} {row['name']:<32} {tiny['peak_mib']:10.0f} "
            f"{ref['peak_mib'] if ref else float('nan'):10.0f}")
    if ref:
        line += f" {tiny['peak_mib'] / ref['peak_mib']:6.2f}"
    if tiny["step_mib"] is None:
        return line
    line += f"   step adds {tiny['step_mib']:.0f} MiB"
    if ref and ref["step_mib"] is not None:
        line += f" vs {ref['step_mib']:.0f} MiB"
        if ref["step_mib"] > 0:
            line += f" (ratio {tiny['step_mib'] / ref['step_mib']:.2f})"
    return line


def markdown(results):
    """The results as Markdown tables, as docs/performance.md shows them."""
    def ms(seconds):
        return f"{seconds * 1e3:.1f}" if seconds is not None else "-"

    lines = ["| group | row | tinyresnet ms | PyTorch ms | ratio | tinyresnet GFLOP/s |",
             "|---|---|--:|--:|--:|--:|"]
    for row in results["rows"]:
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") else "-"
        gflops = f"{row['tinyresnet_gflops']:.0f}" if row.get("tinyresnet_gflops") else ""
        lines.append(f"| {row['group']} | {row['name']} | {ms(row['tinyresnet_s'])} | "
                     f"{ms(row.get('torch_s'))} | {ratio} | {gflops} |")
    if results["memory"]:
        lines += ["", "| training step | tinyresnet peak RSS MiB | PyTorch peak RSS MiB | ratio | "
                      "the step adds (tinyresnet / PyTorch) MiB |", "|---|--:|--:|--:|--:|"]
        for row in results["memory"]:
            tiny, ref = row["tinyresnet"], row.get("torch")
            peak_ratio = f"{tiny['peak_mib'] / ref['peak_mib']:.2f}" if ref else "-"
            adds = f"{tiny['step_mib']:.0f}" if tiny["step_mib"] is not None else "-"
            if ref and ref["step_mib"] is not None:
                adds += f" / {ref['step_mib']:.0f}"
            lines.append(f"| {row['name']} | {tiny['peak_mib']:.0f} | "
                         f"{ref['peak_mib'] if ref else float('nan'):.0f} | {peak_ratio} | {adds} |")
    return "\n".join(lines) + "\n"


def machine_info(threads):
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    try:
        import threadpoolctl

        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                   "filepath")}
            for p in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = None
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def set_threads(threads):
    """Pin both sides to ``threads`` threads: PyTorch's (``torch.set_num_threads``), tinyresnet's
    ops (``tinyresnet.functional.set_num_threads``; their products run single-threaded BLAS on
    those threads), and BLAS's own pool for everything else; returns the threadpoolctl limiter
    (keep it alive)."""
    if torch is not None:
        torch.set_num_threads(threads)
    from tinyresnet.functional import parallel

    parallel.set_num_threads(threads)
    try:
        import threadpoolctl
    except ImportError:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
        return None
    return threadpoolctl.threadpool_limits(limits=threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per row")
    parser.add_argument("--only", default="ops,steps,memory",
                        help="comma-separated subset of ops, steps, memory")
    parser.add_argument("--no-torch", action="store_true", help="time tinyresnet alone")
    parser.add_argument("--rows", metavar="TEXT", help="only the op rows whose name holds TEXT")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown")
    parser.add_argument("--render", metavar="JSON",
                        help="run nothing: print (and --markdown) the tables of an earlier --json")
    parser.add_argument("--timer", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (use with --threads 1 on a "
                             "busy machine)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if not only or not only <= {"ops", "steps", "memory"}:
        parser.error(f"--only takes a comma-separated subset of ops, steps, memory; got {args.only!r}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        print(format_header())
        print("\n".join([format_row(r) for r in results["rows"]]
                        + [format_memory(r) for r in results["memory"]]))
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(markdown(results))
        return results
    global clock
    clock = CLOCKS[args.timer]
    use_torch = torch is not None and not args.no_torch
    reps = args.reps or (2 if args.quick else 5)
    limiter = set_threads(args.threads)  # noqa: F841 (kept alive for the whole run)

    def log(line):
        print(line, flush=True)

    info = machine_info(args.threads)
    log(f"# {info['cpu']}, {args.threads} threads, numpy {info['numpy']}, torch {info['torch']}, "
        f"{args.timer} time, median of {reps}")
    for pool in info["threadpools"] or []:
        log(f"#   {pool['internal_api']} {pool.get('version') or ''} "
            f"{pool.get('architecture') or ''} threads={pool['num_threads']}")
    log(format_header())
    results = {"machine": info, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
               "reps": reps, "timer": args.timer, "rows": [], "memory": []}
    if "ops" in only:
        results["rows"] += op_rows(args.quick, reps, use_torch, log, args.rows)
        results["conv_geomean"] = conv_geomean(results["rows"])
        if results["conv_geomean"] is not None:
            log(f"# conv2d fwd+bwd: geometric mean of the ratios, {results['conv_geomean']:.2f}")
    if "steps" in only or "memory" in only:
        import steps

        if "steps" in only:
            results["rows"] += steps.step_rows(args.quick, reps, use_torch, log, format_row,
                                              time_side_by_side, _row)
        if "memory" in only:
            results["memory"] = steps.memory_rows(args.quick, args.threads, use_torch, log,
                                                  format_memory)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results))
    return results


if __name__ == "__main__":
    main()
