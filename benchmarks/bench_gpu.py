"""GPU mode of the benchmark: tinyresnet on CuPy against PyTorch on the same NVIDIA GPU.

    python3 benchmarks/bench_gpu.py [--tf32] [--reps 10] [--quick] [--json out.json]

The same rows as bench.py (conv2d forward+backward on the ResNet-50 and CIFAR shapes, whole
training steps), float32 on both sides.  The headline figures are with TF32 off on both sides (the
default); ``--tf32`` turns it on on both sides (CuPy reads CUPY_TF32 when it is imported, so this
flag is handled before the import).  Each time is the median of ``--reps`` calls after warm-up,
the device synchronised before and after each call.  The ResNet-50 step uses batch 64 (the GPU
target of issue 6); ResNet-18 batch 64 and CIFAR ResNet-56 batch 128 follow.
"""
import argparse
import json
import os
import statistics
import sys
import time


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tf32", action="store_true", help="allow TF32 on both sides")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="two small rows: a smoke run")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    return p.parse_args(argv)


ARGS = _parse(sys.argv[1:]) if __name__ == "__main__" else None
if ARGS is not None:
    os.environ["CUPY_TF32"] = "1" if ARGS.tf32 else "0"  # before cupy is imported

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from bench import CIFAR_CONVS, QUICK_CONVS, RESNET50_CONVS  # noqa: E402
from tinyresnet import backend  # noqa: E402
from tinyresnet import functional as F  # noqa: E402

GPU_STEPS = {
    "resnet50 224x224 b64": ("resnet50", 64, 224, 1000),
    "resnet18 224x224 b64": ("resnet18", 64, 224, 1000),
    "cifar_resnet56 32x32 b128": ("cifar_resnet56", 128, 32, 10),
}
QUICK_STEPS = {"cifar_resnet20 32x32 b8": ("cifar_resnet20", 8, 32, 10)}
SGD = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)


def median_time(fn, sync, reps, warmup=2):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def conv_fns(shape, cupy, torch):
    _, N, C, H, W, Fo, k, s, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((Fo, C, k, k), dtype=np.float32) * 0.05
    xg, wg = cupy.asarray(x), cupy.asarray(w)

    def ours():
        y, cache = F.conv2d_forward(xg, wg, None, s, p)
        F.conv2d_backward(cupy.ones_like(y), cache)

    fns = {"tinyresnet": ours}
    if torch is not None:
        xt = torch.from_numpy(x).cuda().requires_grad_()
        wt = torch.from_numpy(w).cuda().requires_grad_()

        def theirs():
            y = torch.nn.functional.conv2d(xt, wt, None, s, p)
            y.backward(torch.ones_like(y))

        fns["torch"] = theirs
    return fns


def step_fns(spec, cupy, torch):
    from tinyresnet import models, nn, optim

    name, batch, size, classes = spec
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    labels = rng.integers(0, classes, batch)
    model = getattr(models, name)(num_classes=classes).to("cuda").train()
    opt = optim.SGD(model.parameters(), **SGD)
    loss_fn = nn.CrossEntropyLoss()
    xg, yg = cupy.asarray(x), cupy.asarray(labels)

    def ours():
        loss_fn(model(xg), yg)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()

    fns = {"tinyresnet": ours}
    if torch is not None:
        import torch_resnet

        if name.startswith("cifar_resnet"):
            net = torch_resnet.cifar_resnet(int(name[len("cifar_resnet"):]), classes)
        else:
            net = getattr(torch_resnet, name)(classes)
        net = net.cuda().train()
        topt = torch.optim.SGD(net.parameters(), **SGD)
        xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(labels).cuda()

        def theirs():
            loss = torch.nn.functional.cross_entropy(net(xt), yt)
            topt.zero_grad()
            loss.backward()
            topt.step()

        fns["torch"] = theirs
    return fns


def main():
    if not backend.cupy_available():
        sys.exit("bench_gpu: needs CuPy and an NVIDIA GPU (pip install 'tinyresnet[cuda13]')")
    import cupy

    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = ARGS.tf32
        torch.backends.cudnn.allow_tf32 = ARGS.tf32
        torch.backends.cudnn.benchmark = True

    def sync():
        cupy.cuda.Device().synchronize()
        if torch is not None:
            torch.cuda.synchronize()

    convs = QUICK_CONVS if ARGS.quick else RESNET50_CONVS + CIFAR_CONVS
    steps = QUICK_STEPS if ARGS.quick else GPU_STEPS
    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"{device}; TF32 {'on' if ARGS.tf32 else 'off'} on both sides; median of {ARGS.reps}")
    print(f"{'row':44s} {'tinyresnet ms':>14s} {'PyTorch ms':>11s} {'ratio':>6s}")
    rows = []
    jobs = [("conv2d fwd+bwd", s[0], lambda s=s: conv_fns(s, cupy, torch)) for s in convs]
    jobs += [("training step", n, lambda spec=spec: step_fns(spec, cupy, torch))
             for n, spec in steps.items()]
    for group, name, make in jobs:
        fns = make()
        t = {side: median_time(fn, sync, ARGS.reps) for side, fn in fns.items()}
        ratio = t["tinyresnet"] / t["torch"] if "torch" in t else None
        rows.append({"group": group, "name": name, "tinyresnet_s": t["tinyresnet"],
                     "torch_s": t.get("torch"), "ratio": ratio})
        theirs = f"{t['torch'] * 1e3:11.2f}" if "torch" in t else f"{'-':>11s}"
        print(f"{name:44s} {t['tinyresnet'] * 1e3:14.2f} {theirs} "
              f"{ratio if ratio is None else round(ratio, 2)!s:>6s}", flush=True)
        del fns
        cupy.get_default_memory_pool().free_all_blocks()
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"device": device, "tf32": ARGS.tf32, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
