r"""Loss landscape slices along filter-normalised random directions (Li et al. 2018).

A slice evaluates the loss at theta + alpha d (1-D) or theta + alpha d1 + beta d2 (2-D) for random
directions d with every filter rescaled to the norm of the same filter in theta:

.. math::  d_{i,j} \leftarrow \frac{d_{i,j}}{\lVert d_{i,j} \rVert}\, \lVert \theta_{i,j} \rVert

(filter j of layer i: one output channel of a conv weight, one row of a linear weight).  Without it
a step of the same size means different things in layers of different scale, and BN's scale
invariance would hide the shape of the landscape.  Biases and BN's weight and bias (every 1-D
parameter) get d = 0, as in the paper, and BN runs in evaluation mode so that every point of the
slice is the same deterministic function of its weights.
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..backend import get_array_module, to_numpy

__all__ = [
    "filter_normalized_direction", "evaluate", "loss_slice_1d", "loss_slice_2d",
    "Slice1D", "Slice2D", "plot_loss_slice_1d", "plot_loss_slice_2d",
]


def filter_normalized_direction(model, seed=0):
    """A random Gaussian direction, name -> array, filter-normalised to the model's weights.

    Parameters with fewer than 2 dimensions (biases, BN scale and shift) get zeros.  The direction
    is drawn from its own generator (``seed``), leaving the package generator untouched.
    """
    rng = np.random.default_rng(seed)
    direction = {}
    for name, p in model.named_parameters():
        theta = np.asarray(to_numpy(p.data), dtype=np.float64)
        if theta.ndim < 2:
            d = np.zeros_like(theta)
        else:
            d = rng.standard_normal(theta.shape)
            axes = tuple(range(1, theta.ndim))
            # Each filter (axis 0 slice) of d takes the norm of the same filter of theta.
            d_norm = np.sqrt((d**2).sum(axis=axes, keepdims=True))
            theta_norm = np.sqrt((theta**2).sum(axis=axes, keepdims=True))
            d = d / np.maximum(d_norm, 1e-12) * theta_norm
        xp = get_array_module(p.data)
        direction[name] = xp.asarray(d.astype(p.data.dtype))
    return direction


def evaluate(model, x, y, batch_size=256):
    """Mean cross-entropy loss and accuracy of ``model`` on (x, y), in the model's current mode."""
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct = 0.0, 0
    with nn.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = model(xb)
            total_loss += float(loss_fn(logits, yb)) * len(xb)
            correct += int((to_numpy(logits).argmax(axis=1) == to_numpy(yb)).sum())
    return total_loss / len(x), correct / len(x)


def _sweep(model, x, y, coefficients, directions, batch_size):
    """Loss and accuracy at theta + sum_k c_k d_k for every row c of ``coefficients``."""
    params = dict(model.named_parameters())
    theta = {name: p.data.copy() for name, p in params.items()}
    was_training = model.training
    model.eval()
    losses, accuracies = [], []
    try:
        for c in coefficients:
            for name, p in params.items():
                p.data = theta[name] + sum(float(ck) * d[name] for ck, d in zip(c, directions))
            loss, acc = evaluate(model, x, y, batch_size)
            losses.append(loss)
            accuracies.append(acc)
    finally:
        for name, p in params.items():
            p.data = theta[name]
        model.train(was_training)
    return np.array(losses), np.array(accuracies)


@dataclass
class Slice1D:
    """Loss and accuracy at theta + alpha d.  alphas, loss, accuracy: arrays (A,)."""

    alphas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray


@dataclass
class Slice2D:
    """Loss and accuracy at theta + alpha d1 + beta d2.  loss, accuracy: arrays (B, A), row = beta."""

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray


def loss_slice_1d(model, x, y, alphas=np.linspace(-1, 1, 21), seed=0, direction=None,
                  batch_size=256):
    """Loss along one filter-normalised random direction (BN in eval mode; weights restored after)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    d = filter_normalized_direction(model, seed) if direction is None else direction
    loss, acc = _sweep(model, x, y, alphas[:, None], [d], batch_size)
    return Slice1D(alphas, loss, acc)


def loss_slice_2d(model, x, y, alphas=np.linspace(-1, 1, 11), betas=None, seed=0,
                  directions=None, batch_size=256):
    """Loss over the plane spanned by two filter-normalised random directions (seeds seed, seed+1)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    betas = alphas if betas is None else np.asarray(betas, dtype=np.float64)
    if directions is None:
        directions = [filter_normalized_direction(model, seed),
                      filter_normalized_direction(model, seed + 1)]
    grid = np.array([(a, b) for b in betas for a in alphas])
    loss, acc = _sweep(model, x, y, grid, directions, batch_size)
    shape = (len(betas), len(alphas))
    return Slice2D(alphas, betas, loss.reshape(shape), acc.reshape(shape))


def plot_loss_slice_1d(slices, log=True):
    """Loss along the direction, one curve per model.  ``slices``: dict label -> Slice1D."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    for label, s in slices.items():
        ax.plot(s.alphas, s.loss, marker=".", label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step along filter-normalised direction, alpha")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("1-D loss slice (BN in eval mode)")
    ax.legend()
    return fig


def plot_loss_slice_2d(slices, levels=20):
    """Contours of log10(loss) over the plane, one panel per model.  ``slices``: label -> Slice2D."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(slices) + 0.8, 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(slices)))
    log_losses = [np.log10(s.loss) for s in slices.values()]
    lo = min(float(v.min()) for v in log_losses)
    hi = max(float(v.max()) for v in log_losses)
    shared_levels = np.linspace(lo, hi, levels)
    for ax, (label, s), z in zip(axes, slices.items(), log_losses):
        contours = ax.contour(s.alphas, s.betas, z, levels=shared_levels, cmap="viridis")
        ax.plot([0], [0], marker="*", color="red", ls="none", label="theta (centre)")
        ax.set_title(label)
        ax.set_xlabel("alpha (direction 1)")
        ax.set_ylabel("beta (direction 2)")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(contours, ax=list(axes), label="log10 loss")
    return fig
