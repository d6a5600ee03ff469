"""Training history: one record per epoch, kept as JSON lines and CSV, drawn as a PNG.

``history.jsonl`` is the source of truth (one JSON object per line, appended and fsync'ed after
every epoch, so a crash loses at most the epoch in flight); ``history.csv`` is rewritten from it
for spreadsheets; ``curves.png`` shows loss (log scale) and top-1 accuracy against the epoch, train and
validation side by side.  Plots use matplotlib's Agg canvas: no display is needed.
"""
import csv
import json
import os

__all__ = ["History", "plot_history"]


class History:
    """Per-epoch records in ``out_dir``: ``append(record)`` writes history.jsonl, history.csv and
    curves.png.

    Parameters
    ----------
    out_dir : folder for the three files
    plot : draw curves.png after every append (set False to skip matplotlib entirely)
    """

    def __init__(self, out_dir, plot=True):
        self.out_dir = os.fspath(out_dir)
        self.plot = plot
        self.jsonl_path = os.path.join(self.out_dir, "history.jsonl")
        self.csv_path = os.path.join(self.out_dir, "history.csv")
        self.png_path = os.path.join(self.out_dir, "curves.png")
        self.records = []

    @classmethod
    def load(cls, out_dir, plot=True, upto_epoch=None):
        """Read an existing history.jsonl; with ``upto_epoch`` keep only records of epochs below it
        (a resumed run replays from its checkpoint and must not list an epoch twice)."""
        history = cls(out_dir, plot=plot)
        if os.path.isfile(history.jsonl_path):
            with open(history.jsonl_path) as f:
                history.records = [json.loads(line) for line in f if line.strip()]
        if upto_epoch is not None:
            history.records = [r for r in history.records if r.get("epoch", 0) < upto_epoch]
            history._rewrite_jsonl()
        return history

    def append(self, record):
        """Add one epoch's record (a flat dict of numbers and strings) and update every file."""
        os.makedirs(self.out_dir, exist_ok=True)
        self.records.append(dict(record))
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._write_csv()
        if self.plot:
            plot_history(self.records, self.png_path)

    def _rewrite_jsonl(self):
        os.makedirs(self.out_dir, exist_ok=True)
        with open(self.jsonl_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.records)

    def _write_csv(self):
        columns = []
        for r in self.records:
            columns += [k for k in r if k not in columns]
        with open(self.csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.records)


def plot_history(records, path):
    """Draw loss (left, log scale) and top-1 accuracy (right) per epoch, train and val, into a PNG.

    ``records`` are dicts with "epoch" and any of "train_loss", "val_loss", "train_acc1",
    "val_acc1".  Returns ``path``.
    """
    # A bare Figure on an Agg canvas, not pyplot: no global backend switch, so a notebook's
    # inline plots keep working, and no display is needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # Epochs are counted from 1 on the axis, as a person counts them.
    epochs = [r["epoch"] + 1 for r in records]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "cross-entropy loss"),
                              (ax_acc, "acc1", "top-1 accuracy (%)")):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{metric}"
            points = [(e, r[key]) for e, r in zip(epochs, records) if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=split)
        if metric == "loss" and all(v > 0 for line in ax.get_lines() for v in line.get_ydata()):
            # Losses span decades (a first-epoch spike, then a slow approach to zero).
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs and min(epochs) == max(epochs):
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)  # one epoch: an axis of whole epochs around it
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
    ax_loss.set_title("loss")
    ax_acc.set_title("accuracy")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Draw to a temporary name and rename, so a viewer never catches a half-written PNG.
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path
