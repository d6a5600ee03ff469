r"""Top-k accuracy and running averages, the two numbers a training loop reports.

A sample counts as top-k correct when its label is among the k largest logits:

.. math::  \text{acc@k} = \tfrac{100}{N} \textstyle\sum_n [\, y_n \in \operatorname{topk}(z_n) \,]

Ties are broken as ``argsort`` breaks them (by index), which is how ``torch.topk`` behaves on CPU
for distinct values; with real logits ties have probability zero.
"""
import numpy as np

from ..backend import to_numpy

__all__ = ["topk_correct", "accuracy", "AverageMeter"]


def topk_correct(logits, labels, topk=(1,)):
    """How many samples have their label among the k highest logits, for each k.

    Parameters
    ----------
    logits : array (N, K), NumPy or CuPy
    labels : int array (N,)
    topk : tuple of int; each k is clipped to K, so top-5 of a 3-class problem is top-3

    Returns
    -------
    list of int, one count per k
    """
    z = to_numpy(logits)
    y = to_numpy(labels)
    if z.ndim != 2:
        raise ValueError(f"topk_correct: expected logits of shape (N, K), got {z.shape}")
    if y.shape != (z.shape[0],):
        raise ValueError(
            f"topk_correct: expected labels of shape ({z.shape[0]},) for logits {z.shape}, "
            f"got {y.shape}"
        )
    K = z.shape[1]
    kmax = min(max(topk), K)
    # The kmax best classes per row, best first: argpartition would be O(K) but loses the order.
    best = np.argsort(-z, axis=1, kind="stable")[:, :kmax]
    hit = best == y[:, None]
    return [int(hit[:, :min(k, K)].any(axis=1).sum()) for k in topk]


def accuracy(logits, labels, topk=(1,)):
    """Top-k accuracy in percent for each k (the list PyTorch's ImageNet example returns)."""
    n = max(int(np.shape(labels)[0]), 1)
    return [100.0 * c / n for c in topk_correct(logits, labels, topk)]


class AverageMeter:
    """A running, sample-weighted average: ``update(value, n)`` adds n samples of mean ``value``.

    ``avg`` is sum(value_i * n_i) / sum(n_i); ``val`` is the last value.  The state is three
    numbers, so a checkpoint can carry a meter across an interruption.
    """

    def __init__(self, name=""):
        self.name = name
        self.reset()

    def reset(self):
        self.val, self.sum, self.count = 0.0, 0.0, 0

    def update(self, value, n=1):
        self.val = float(value)
        self.sum += float(value) * n
        self.count += int(n)

    @property
    def avg(self):
        return self.sum / self.count if self.count else 0.0

    def state_dict(self):
        return {"val": self.val, "sum": self.sum, "count": self.count}

    def load_state_dict(self, state):
        self.val, self.sum, self.count = float(state["val"]), float(state["sum"]), int(state["count"])

    def __repr__(self):
        return f"AverageMeter({self.name!r}, avg={self.avg:.4g}, count={self.count})"
