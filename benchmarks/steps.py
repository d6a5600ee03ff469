"""Whole training steps (forward, loss, backward, SGD step) and their peak memory, both sides.

Used by bench.py; run on its own it is the memory child:

    python3 benchmarks/steps.py --child {tinyresnet,torch} NAME [--threads N]

which builds one side's network and batch, runs two training steps and prints, as JSON, its
resident set size after setup and its peak during the steps.  Each side runs in its own process so that
the two peaks do not mix.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# name -> (tinyresnet factory, torch factory name, batch, image size, classes)
STEPS = {
    "resnet50 224x224 b8": ("resnet50", "resnet50", 8, 224, 1000),
    "resnet18 224x224 b8": ("resnet18", "resnet18", 8, 224, 1000),
    "cifar_resnet56 32x32 b128": ("cifar_resnet56", "cifar_resnet56", 128, 32, 10),
    "cifar_resnet20 32x32 b128": ("cifar_resnet20", "cifar_resnet20", 128, 32, 10),
}
QUICK_STEPS = {"cifar_resnet20 32x32 b4": ("cifar_resnet20", "cifar_resnet20", 4, 32, 10)}
SGD = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)


def _batch(batch, size, classes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    return x, rng.integers(0, classes, batch)


def tinyresnet_step(name, batch, size, classes):
    """Build a tinyresnet network and batch; return a function running one training step."""
    from tinyresnet import models, nn

    model = getattr(models, name)(num_classes=classes)
    model.train()
    if hasattr(nn, "skip_input_grad"):  # no dL/d(images), as the trainer and PyTorch
        nn.skip_input_grad(model)
    loss_fn = nn.CrossEntropyLoss()
    x, labels = _batch(batch, size, classes)
    try:
        from tinyresnet import optim

        opt = optim.SGD(model.parameters(), **SGD)
        update = opt.step
    except ImportError:  # before tinyresnet.optim existed: the same update by hand
        params = list(model.parameters())
        velocity = [np.zeros_like(p.data) for p in params]

        def update():
            for p, v in zip(params, velocity):
                g = p.grad + SGD["weight_decay"] * p.data
                v *= SGD["momentum"]
                v += g
                p.data -= SGD["lr"] * v

    def step():
        loss = loss_fn(model(x), labels)
        model.zero_grad()
        model.backward(loss_fn.backward())
        update()
        return loss

    return step


def torch_step(name, batch, size, classes):
    """Build the same network in PyTorch (torch_resnet.py); return one training step."""
    import torch

    import torch_resnet

    if name.startswith("cifar_resnet"):
        model = torch_resnet.cifar_resnet(int(name[len("cifar_resnet"):]), classes)
    else:
        model = getattr(torch_resnet, name)(classes)
    model.train()
    opt = torch.optim.SGD(model.parameters(), **SGD)
    x, labels = (torch.from_numpy(a) for a in _batch(batch, size, classes))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def models_available():
    try:
        import tinyresnet.models  # noqa: F401
    except ImportError:
        return False
    return True


def step_rows(quick, reps, use_torch, log, format_row, time_side_by_side, make_row):
    """Time every training step, the two sides alternating rep by rep (bench.py's timer)."""
    if not models_available():
        log("# tinyresnet.models is missing: no training-step rows")
        return []
    rows = []
    for name, (tiny_name, torch_name, batch, size, classes) in (QUICK_STEPS if quick else STEPS).items():
        fns = {"tinyresnet": tinyresnet_step(tiny_name, batch, size, classes)}
        if use_torch:
            fns["torch"] = torch_step(torch_name, batch, size, classes)
        rows.append(make_row("training step", name, time_side_by_side(fns, reps)))
        log(format_row(rows[-1]))
        del fns
    return rows


def _rss_mib(field):
    """VmRSS (now) or VmHWM (peak) of this process in MiB, from /proc/self/status (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024


def _child(side, name, threads):
    """Run in a fresh process: resident memory (MiB) after setup and at the training step's peak.

    The peak is the kernel's high-water mark VmHWM, reset after setup (``clear_refs``), so that it
    covers the two training steps alone.  (``ru_maxrss`` would not do: Linux carries the parent's
    resident size at fork over to the child.)  Where /proc is missing the peak is ru_maxrss.
    """
    tiny_name, torch_name, batch, size, classes = {**STEPS, **QUICK_STEPS}[name]
    if side == "torch":
        import torch

        torch.set_num_threads(threads)
        step = torch_step(torch_name, batch, size, classes)
    else:
        from tinyresnet.functional import parallel

        parallel.set_num_threads(threads)
        step = tinyresnet_step(tiny_name, batch, size, classes)
    try:
        setup = _rss_mib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident size to the current one
    except OSError:
        setup = None
    step()
    step()
    if setup is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 ** 2)
        return {"setup_mib": None, "peak_mib": peak, "step_mib": None}
    peak = _rss_mib("VmHWM")
    return {"setup_mib": setup, "peak_mib": peak, "step_mib": peak - setup}


def memory_rows(quick, threads, use_torch, log, format_memory):
    """Peak RSS of each training step, each side in its own subprocess."""
    if not models_available():
        return []
    rows = []
    sides = ["tinyresnet", "torch"] if use_torch else ["tinyresnet"]
    for name in QUICK_STEPS if quick else STEPS:
        row = {"name": name}
        for side in sides:
            cmd = [sys.executable, os.path.abspath(__file__), "--child", side, name,
                   "--threads", str(threads)]
            env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                       OPENBLAS_NUM_THREADS=str(threads))
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            row[side] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        log(format_memory(row))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="memory child of bench.py")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "NAME"), required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(json.dumps(_child(*args.child, args.threads)))
