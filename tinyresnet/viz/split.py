r"""Identity versus residual: the two parts of every block's input gradient.

A block out = relu(F(x) + s(x)) receives dL/dout and sends back

.. math::  \frac{\partial L}{\partial x} = \underbrace{J_s^\top g}_{\text{shortcut}}
           + \underbrace{J_F^\top g}_{\text{branch}}, \qquad g = \frac{\partial L}{\partial \mathrm{out}}
           \odot [\mathrm{out} > 0]

The blocks themselves keep neither part.  ``record_split`` instruments them while it is active:
it wraps each block's ``branch_backward`` and ``shortcut_backward`` (and, in a pre-activation
block, the backward of the pre-activation that branch and projection share) to catch the two parts
as the block's own backward computes them.  ``gradient_split`` collects them for a whole model
with their norms, their ratio and the cosine between them.  At
initialisation the shortcut part dominates (the branch ends in a BN whose output is no larger than
the input), which is what lets gradient through undiminished; a cosine near 0 says the branch adds
a nearly orthogonal correction rather than scaling the identity's gradient.
"""
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..backend import get_array_module, to_numpy
from ..models import residual_blocks
from ._instrument import patched, record_backward

__all__ = ["GradientParts", "record_split", "GradientSplit", "gradient_split",
           "plot_gradient_split"]


@dataclass
class GradientParts:
    """The two parts of one block's input gradient, ``grad_branch + grad_shortcut == dx``.

    Attributes
    ----------
    grad_branch : array (N, C, H, W), the part that came back through the residual branch
    grad_shortcut : array (N, C, H, W), the part through the shortcut (zero in a plain block)
    """

    grad_branch: object
    grad_shortcut: object


@contextmanager
def record_split(model):
    """Record the branch and shortcut parts of every residual block's input gradient.

    Inside the ``with`` block each backward of a block of ``model`` (a network, or one block)
    fills the yielded dict: qualified name (``""`` for ``model`` itself) -> GradientParts of the
    latest backward (None until the block's first backward), in depth order; the block returns
    their sum as its dx.  Leaving the block restores the model's own methods.  Patches nest, but
    two ``record_split`` of one model must not: each would split the other's split.
    """
    parts = dict.fromkeys(name for name, _ in residual_blocks(model))
    with ExitStack() as stack:
        for name, block in residual_blocks(model):
            backward = _splitting_backward(block, name, parts)
            stack.enter_context(patched(block, backward=backward))
        yield parts


def _splitting_backward(block, name, parts):
    """A backward for ``block`` that runs its own and records the two parts of dx."""
    original = block.backward
    caught = {}

    def catch(key, fn):
        def wrapped(d):
            caught[key] = fn(d)
            return caught[key]
        return wrapped

    def backward(dy):
        caught.clear()
        with ExitStack() as stack:
            if block.preact:
                stack.enter_context(patched(block, branch_backward=catch("da_branch",
                                                                         block.branch_backward),
                                            _preact_backward=_split_preact(block, caught)))
                if block.downsample is not None:
                    stack.enter_context(patched(block.downsample, backward=catch(
                        "da_shortcut", block.downsample.backward)))
            else:
                stack.enter_context(patched(block, branch_backward=catch("branch",
                                                                         block.branch_backward),
                                            shortcut_backward=catch("shortcut",
                                                                    block.shortcut_backward)))
            original(dy)
        grad_branch = caught["branch"]
        if not block.skip:
            grad_shortcut = get_array_module(grad_branch).zeros_like(grad_branch)
        elif block.preact and block.downsample is None:
            grad_shortcut = dy  # the identity hands dy to x untouched
        else:
            grad_shortcut = caught["shortcut"]
        parts[name] = GradientParts(grad_branch, grad_shortcut)
        return grad_branch + grad_shortcut

    return backward


def _split_preact(block, caught):
    """The backward of a pre-activation block's a = relu1(bn1(x)), taken once per part.

    Branch and projection both read ``a``, so the block adds their gradients before this
    backward.  Here each part goes through on its own instead: the backward is linear in the
    gradient it receives (for the statistics of this forward), so the results add up to the
    backward of the sum, and bn1's parameters get the same total.  The second pass needs the
    forward caches a second time: the top of each stack is pushed again.
    """
    original = block._preact_backward

    def preact_backward(da):
        if block.downsample is None:
            caught["branch"] = original(da)
            return caught["branch"]
        for m in (*block.relu1.modules(), *block.bn1.modules()):
            if m._caches:
                m._caches.append(m._caches[-1])
        caught["branch"] = original(caught["da_branch"])
        caught["shortcut"] = original(caught["da_shortcut"])
        return caught["branch"] + caught["shortcut"]

    return preact_backward


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
    with record_split(model) as parts, record_backward(blocks) as records:
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    shortcut, branch, total, cosine, error = [], [], [], [], []
    for name, _ in blocks:
        dx = _flat64(records[name]["dx"])
        b = _flat64(parts[name].grad_branch)
        s = _flat64(parts[name].grad_shortcut)
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
