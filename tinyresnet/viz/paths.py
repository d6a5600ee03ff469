r"""Residual networks as ensembles of paths (Veit, Wilber & Belongie 2016).

Unrolling n residual blocks y = x + F(x) gives 2^n paths from input to output: at each block a
path takes either the skip or the branch.  The number of paths that pass through exactly k
branches is C(n, k), so the path length is Binomial(n, 1/2):

.. math::  P(k) = \binom{n}{k} 2^{-n}

To measure how much gradient a path of length k carries, forward a batch through the whole net,
then in the backward pass pick k blocks at random, let the gradient through only their branches
and only the skips of the other n - k blocks, and take the norm of what arrives at the first
block's input.  Veit et al. found it falls quickly with k, so the gradient of a deep ResNet comes
almost entirely from short paths.
"""
from contextlib import ExitStack
from dataclasses import dataclass
from math import comb

import numpy as np

from .. import nn
from ..models import residual_blocks
from ._instrument import norm, patched, record_backward
from .split import record_split

__all__ = [
    "path_length_distribution", "PathLengths", "path_gradient_magnitude", "PathGradients",
    "plot_paths",
]


@dataclass
class PathLengths:
    """The distribution of path lengths through n residual blocks.

    Attributes
    ----------
    n : int
    lengths : array (n+1,), k = 0 .. n
    counts : list of n+1 Python ints, C(n, k) (exact, even past 2^63)
    probabilities : array (n+1,), C(n, k) / 2^n
    """

    n: int
    lengths: np.ndarray
    counts: list
    probabilities: np.ndarray


def path_length_distribution(n):
    """Number and fraction of the 2^n paths through n residual blocks that take k branches."""
    if n < 0:
        raise ValueError(f"path_length_distribution: expected n >= 0 blocks, got {n}")
    counts = [comb(n, k) for k in range(n + 1)]
    return PathLengths(n, np.arange(n + 1), counts, np.array([c / 2**n for c in counts]))


@dataclass
class PathGradients:
    """Gradient norm at the first block's input through paths of each length.

    Attributes
    ----------
    n : int, the number of residual blocks
    lengths : array (L,), the path lengths measured
    magnitudes : array (L, S), one norm per sampled path
    """

    n: int
    lengths: np.ndarray
    magnitudes: np.ndarray

    @property
    def mean(self):
        return self.magnitudes.mean(axis=1)

    @property
    def std(self):
        return self.magnitudes.std(axis=1)


def _path_backward(block, name, parts, through_branch):
    """Inside ``record_split``: run the block's backward, pass on one of the two parts."""
    split = block.backward

    def backward(dy):
        split(dy)
        return parts[name].grad_branch if through_branch else parts[name].grad_shortcut

    return backward


def path_gradient_magnitude(model, x, y, lengths=None, samples=10, seed=0):
    """Norm of the loss gradient at the first residual block's input through paths of length k.

    For every k in ``lengths`` (default 0 .. n) and each of ``samples`` draws: one forward of
    (x, y) in the model's current mode, then a backward in which k random blocks pass on only the
    part of their input gradient that came through their branch and the others only the part
    through their shortcut (see ``record_split``).  BN running statistics and
    parameter gradients are restored afterwards.
    """
    blocks = list(residual_blocks(model))
    n = len(blocks)
    lengths = np.arange(n + 1) if lengths is None else np.asarray(lengths, dtype=int)
    if lengths.min() < 0 or lengths.max() > n:
        raise ValueError(f"path_gradient_magnitude: path lengths must lie in 0..{n}, got {lengths}")
    rng = np.random.default_rng(seed)
    saved_state = {k: v.copy() for k, v in model.state_dict().items()}
    saved_grads = [(p, None if p.grad is None else p.grad.copy()) for p in model.parameters()]
    loss_fn = nn.CrossEntropyLoss()
    magnitudes = np.empty((len(lengths), samples))
    try:
        for i, k in enumerate(lengths):
            for s in range(samples):
                chosen = set(rng.choice(n, size=k, replace=False).tolist())
                with ExitStack() as stack:
                    parts = stack.enter_context(record_split(model))
                    for j, (name, block) in enumerate(blocks):
                        stack.enter_context(
                            patched(block, backward=_path_backward(block, name, parts, j in chosen))
                        )
                    records = stack.enter_context(record_backward([("first", blocks[0][1])]))
                    loss_fn(model(x), y)
                    model.backward(loss_fn.backward())
                magnitudes[i, s] = norm(records["first"]["dx"])
    finally:
        model.load_state_dict(saved_state)
        for p, g in saved_grads:
            p.grad = g
    return PathGradients(n, lengths, magnitudes)


def plot_paths(distribution, gradients=None):
    """Veit et al.'s Fig. 6: path-length distribution, gradient per path length, and their product.

    ``distribution``: a :class:`PathLengths`; ``gradients``: a :class:`PathGradients` (or a dict
    label -> PathGradients) measured on a model with the same number of blocks.  Returns a Figure.
    """
    from matplotlib.figure import Figure

    if isinstance(gradients, PathGradients):
        gradients = {"measured": gradients}
    gradients = gradients or {}
    n_panels = 3 if gradients else 1
    fig = Figure(figsize=(4.2 * n_panels, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n_panels))
    axes[0].bar(distribution.lengths, distribution.probabilities, color="tab:blue",
                label=f"Binomial({distribution.n}, 1/2)")
    axes[0].set_xlabel("path length k (branches taken)")
    axes[0].set_ylabel("fraction of paths")
    axes[0].set_title(f"{2**distribution.n} paths through {distribution.n} blocks", fontsize=10)
    axes[0].legend(loc="upper left")
    if gradients:
        for label, g in gradients.items():
            axes[1].errorbar(g.lengths, g.mean, yerr=g.std, marker="o", capsize=3, label=label)
            p = distribution.probabilities[g.lengths]
            # Gradient carried by all paths of length k: how many there are times how much each.
            axes[2].plot(g.lengths, p * g.mean, marker="o", label=label)
        axes[1].set_yscale("log")
        axes[1].set_xlabel("path length k")
        axes[1].set_ylabel("gradient norm at first block input")
        axes[1].set_title("gradient per path", fontsize=10)
        axes[1].legend()
        axes[2].set_xlabel("path length k")
        axes[2].set_ylabel("fraction of paths x gradient norm")
        axes[2].set_title("total gradient by path length", fontsize=10)
        axes[2].legend()
    return fig
