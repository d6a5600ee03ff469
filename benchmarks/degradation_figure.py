"""The degradation figure (He et al. 2015, Fig. 6) from the runs benchmarks/gpu_cifar10.sh wrote.

    python3 benchmarks/degradation_figure.py RUNS --out degradation.png

RUNS holds plain20/, plain56/, resnet20/, resnet56/, each with the history.jsonl of a
``tinyresnet train`` run.  Left: the plain nets, right: the ResNets; thin dashed lines are the
training error (over the batches of each epoch, BN in training mode, as the paper's), bold lines
the held-out error, both against the iteration at the end of each epoch.
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def curves(run):
    """(iterations, training error %, held-out error %) at the end of each epoch of one run."""
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()
               if line.strip()]
    iterations, total = [], 0
    for r in records:
        total += r["time_steps"]
        iterations.append(total)
    return (iterations, [100 - r["train_acc1"] for r in records],
            [100 - r["val_acc1"] for r in records])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    drawn = 0
    for ax, kind in zip(axes, ("plain", "resnet")):
        for depth, colour in ((20, "tab:orange"), (56, "tab:red")):
            run = args.runs / f"{kind}{depth}"
            if not (run / "history.jsonl").is_file():
                print(f"degradation_figure: no run in {run}; left out", file=sys.stderr)
                continue
            x, train_err, val_err = curves(run)
            label = f"{'plain' if kind == 'plain' else 'ResNet'}-{depth}"
            ax.plot(x, train_err, "--", lw=1, color=colour, label=f"{label} train")
            ax.plot(x, val_err, "-", lw=2, color=colour, label=f"{label} held-out")
            drawn += 1
        ax.set_title("plain networks" if kind == "plain" else "residual networks")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error (%)")
    if drawn == 0:
        print("degradation_figure: no runs to draw", file=sys.stderr)
        return 2
    fig.suptitle("CIFAR-10: plain and residual networks of 20 and 56 layers (as He et al. 2015, Fig. 6)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"degradation figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
