"""The degradation problem (He et al. 2015, Fig. 6), at a size a CPU can run.

Plain and residual CIFAR-style networks of two depths (default 20 and 56 layers, the paper's
pair) train on the same data with the same recipe, over several seeds.  The paper's finding: the
deeper *plain* net has a higher training error than the shallower one (an optimisation problem,
not overfitting), while the deeper *ResNet* trains at least as well as the shallower one.

The data are the built-in 8x8 handwritten digits (1,347 training and 450 test images), one channel,
so every run is a few minutes of NumPy on one core; the networks are the paper's CIFAR nets
(16-32-64 filters, option A shortcuts) with the third stage working at 2x2.  Each run trains with
SGD (momentum 0.9, weight decay 1e-4, a short linear warm-up and then a cosine decay of the
learning rate), batch 64, no augmentation, and logs the mean training loss and error of every
epoch (over the batches seen during the epoch, BN in training mode, as in the paper's curves) and
the test error after it (BN in evaluation mode).

    python3 examples/degradation.py                      # the documented run (~35 min, 1 core)
    python3 examples/degradation.py --depths 8 14 --seeds 0 --epochs 1    # a smoke run

Writes a JSON of every curve and a PNG of the curves (mean over seeds, shaded min..max).
"""
import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import tinyresnet as tr
from tinyresnet import models, nn, optim
from tinyresnet.data import load_digits
from tinyresnet.viz import evaluate


def train_one(depth, skip, seed, epochs, batch_size, lr, train, test):
    """Train one network; returns its per-epoch curves."""
    tr.manual_seed(seed)
    model = models.cifar_resnet(depth, skip=skip, in_channels=1, num_classes=10)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(seed)
    n = len(train.labels)
    steps_per_epoch = n // batch_size
    total, warmup = epochs * steps_per_epoch, steps_per_epoch // 2
    curves = {"train_loss": [], "train_error": [], "test_loss": [], "test_error": []}
    step = 0
    for _ in range(epochs):
        model.train()
        perm = order.permutation(n)
        losses, errors = [], []
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            x, y = train.images[idx], train.labels[idx]
            # Linear warm-up over half an epoch, then cosine decay to 0.
            scale = (step + 1) / warmup if step < warmup else \
                0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
            for group in opt.param_groups:
                group["lr"] = lr * scale
            model.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            model.backward(loss_fn.backward())
            opt.step()
            losses.append(loss)
            errors.append(float((logits.argmax(axis=1) != y).mean()))
            step += 1
        curves["train_loss"].append(float(np.mean(losses)))
        curves["train_error"].append(float(np.mean(errors)))
        model.eval()
        test_loss, test_acc = evaluate(model, test.images, test.labels)
        curves["test_loss"].append(test_loss)
        curves["test_error"].append(1 - test_acc)
    return curves


def plot(results):
    """Training loss (top) and test error (bottom), one column per kind: plain, residual."""
    from matplotlib.figure import Figure

    kinds = sorted({run["skip"] for run in results["runs"]})
    fig = Figure(figsize=(5 * len(kinds), 7), layout="constrained")
    axes = fig.subplots(2, len(kinds), sharey="row", squeeze=False)
    colors = {}
    for run in results["runs"]:
        depth, skip = run["depth"], run["skip"]
        col = kinds.index(skip)
        color = colors.setdefault(depth, f"C{len(colors)}")
        label = f"{'ResNet' if skip else 'plain'}-{depth}"
        for row, key in enumerate(("train_loss", "test_error")):
            curves = np.array([seed_run[key] for seed_run in run["seeds"]])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax = axes[row, col]
            ax.plot(epochs, curves.mean(axis=0), color=color, lw=2, marker="o", ms=3,
                    label=f"{label} (mean of {len(curves)} seeds)")
            ax.fill_between(epochs, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2)
    for col, skip in enumerate(kinds):
        kind = "residual" if skip else "plain"
        axes[0, col].set_title(f"{kind} networks (lr {results['settings']['lr']})")
        axes[0, col].set_yscale("log")
        axes[0, col].set_ylabel("training loss (epoch mean)")
        axes[1, col].set_ylabel("test error")
        for ax in axes[:, col]:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    fig.suptitle("degradation: 8x8 digits, CIFAR-style nets, one recipe for all\n"
                 "(line: mean over seeds; shaded: min..max)")
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs=2, default=[20, 56])
    parser.add_argument("--nets", nargs="+", choices=["plain", "resnet"], default=["plain", "resnet"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N training images only (smoke runs)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (1: the matrices are small; 0: leave the default)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/degradation"),
                        help="writes OUT.json and OUT.png")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw OUT.png from an existing OUT.json")
    args = parser.parse_args(argv)
    # OUT + ".json", not with_suffix, which would turn "runs/lr0.02" into "runs/lr0.json".
    json_path, png_path = (args.out.parent / f"{args.out.name}{ext}" for ext in (".json", ".png"))
    if args.replot:
        results = json.loads(json_path.read_text())
        plot(results).savefig(png_path, dpi=110)
        return results

    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=args.threads, user_api="blas")
    train, test = load_digits()
    if args.train_subset:
        train.images, train.labels = train.images[:args.train_subset], train.labels[:args.train_subset]
    argv = sys.argv[1:] if argv is None else argv
    results = {"command": " ".join(["python3 examples/degradation.py", *argv]),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "runs": []}
    start = time.time()
    with limit:
        for depth in args.depths:
            for skip in [net == "resnet" for net in args.nets]:
                run = {"depth": depth, "skip": skip, "seeds": []}
                for seed in args.seeds:
                    t0 = time.time()
                    curves = train_one(depth, skip, seed, args.epochs, args.batch_size, args.lr,
                                       train, test)
                    curves["seed"], curves["seconds"] = seed, round(time.time() - t0, 1)
                    run["seeds"].append(curves)
                    print(f"{'ResNet' if skip else 'plain'}-{depth} seed {seed}: final train loss "
                          f"{curves['train_loss'][-1]:.4f}, train error {curves['train_error'][-1]:.4f}, "
                          f"test error {curves['test_error'][-1]:.4f} ({curves['seconds']} s)",
                          flush=True)
                results["runs"].append(run)
    results["seconds"] = round(time.time() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1))
    plot(results).savefig(png_path, dpi=110)
    print(f"wrote {json_path} and {png_path} in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
