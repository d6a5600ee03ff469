r"""Identity versus residual: the two parts of every block's input gradient.

A block out = relu(F(x) + s(x)) receives dL/dout and sends back

.. math::  \frac{\partial L}{\partial x} = \underbrace{J_s^\top g}_{\text{shortcut}}
           + \underbrace{J_F^\top g}_{\text{branch}}, \qquad g = \frac{\partial L}{\partial \mathrm{out}}
           \odot [\mathrm{out} > 0]

The blocks keep both parts after each backward (``grad_shortcut``, ``grad_branch``); this module
collects them for a whole model with their norms, their ratio and the cosine between them.  At
initialisation the shortcut part dominates (the branch ends in a BN whose output is no larger than
the input), which is what lets gradient through undiminished; a cosine near 0 says the branch adds
a nearly orthogonal correction rather than scaling the identity's gradient.
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..models import residual_blocks
from ._instrument import record_backward

__all__ = ["GradientSplit", "gradient_split", "plot_gradient_split"]


def _flat64(a):
    return np.asarray(to_numpy(a), dtype=np.float64).ravel()


@dataclass
class GradientSplit:
    """Per residual block, in depth order.

    Attributes
    ----------
    names : list of str
    shortcut_norm, branch_norm, input_norm : arrays (B,), the norms of the shortcut part, of the
        branch part and of the whole input gradient dL/dx
    cosine : array (B,), cos(shortcut part, branch part) (NaN where either is zero)
    max_sum_error : array (B,), max |shortcut + branch - dL/dx| / max |dL/dx|: 0 up to round-off
    """

    names: list
    shortcut_norm: np.ndarray
    branch_norm: np.ndarray
    input_norm: np.ndarray
    cosine: np.ndarray
    max_sum_error: np.ndarray

    @property
    def ratio(self):
        """||shortcut part|| / ||branch part|| per block (inf where the branch part is zero)."""
        with np.errstate(divide="ignore"):
            return self.shortcut_norm / self.branch_norm


def gradient_split(model, x, y):
    """Forward and backward (x, y) with cross-entropy in the model's current mode; split each
    block's input gradient into the part through its shortcut and the part through its branch.

    Parameter gradients (zeroed first) and, in training mode, BN running statistics are left as
    that pass leaves them.
    """
    blocks = list(residual_blocks(model))
    if not blocks:
        raise ValueError(f"gradient_split: {type(model).__name__} has no residual blocks")
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    with record_backward(blocks) as records:
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    shortcut, branch, total, cosine, error = [], [], [], [], []
    for name, block in blocks:
        if block.grad_branch is None:
            raise ValueError(
                f"gradient_split: block {name!r} kept no gradient split; set keep_grad_split = True"
            )
        dx = _flat64(records[name]["dx"])
        b = _flat64(block.grad_branch)
        # A plain block has no shortcut: its shortcut part is zero (or None).
        s = np.zeros_like(dx) if block.grad_shortcut is None else _flat64(block.grad_shortcut)
        ns, nb = np.linalg.norm(s), np.linalg.norm(b)
        shortcut.append(ns)
        branch.append(nb)
        total.append(np.linalg.norm(dx))
        cosine.append(float(s @ b) / (ns * nb) if ns > 0 and nb > 0 else np.nan)
        error.append(np.abs(s + b - dx).max() / max(np.abs(dx).max(), np.finfo(np.float64).tiny))
    return GradientSplit([name for name, _ in blocks], np.array(shortcut), np.array(branch),
                         np.array(total), np.array(cosine), np.array(error))


def plot_gradient_split(splits):
    """Per block: the two parts' norms (log scale) and the cosine between them.

    ``splits``: a GradientSplit or a dict label -> GradientSplit.  Returns a Figure.
    """
    from matplotlib.figure import Figure

    if isinstance(splits, GradientSplit):
        splits = {"": splits}
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for label, s in splits.items():
        prefix = f"{label}: " if label else ""
        blocks = np.arange(len(s.names))
        line, = left.plot(blocks, s.shortcut_norm, marker="o", label=f"{prefix}through shortcut")
        left.plot(blocks, s.branch_norm, marker="s", ls="--", color=line.get_color(),
                  label=f"{prefix}through branch")
        right.plot(blocks, s.cosine, marker="o", color=line.get_color(), label=label or "cosine")
    left.set_yscale("log")
    left.set_xlabel("residual block (input -> output)")
    left.set_ylabel("norm of the block's input-gradient part")
    left.set_title("where a block's input gradient comes from", fontsize=10)
    left.legend(fontsize=8)
    right.axhline(0.0, color="grey", lw=0.6)
    right.set_xlabel("residual block (input -> output)")
    right.set_ylabel("cos(shortcut part, branch part)")
    right.set_title("alignment of the two parts", fontsize=10)
    right.legend(fontsize=8)
    return fig
