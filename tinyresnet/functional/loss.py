r"""Softmax cross-entropy, mean-reduced, with optional label smoothing (as F.cross_entropy).

Shapes: logits z (N, K), labels y (N,) integers in [0, K).

Forward, stable by log-sum-exp (subtract the row maximum before exponentiating):

.. math::
    \log p_{nk} = z_{nk} - \max_j z_{nj} - \log \textstyle\sum_j e^{z_{nj} - \max z_n}, \qquad
    L = -\tfrac1N \textstyle\sum_n \sum_k t_{nk} \log p_{nk}

with targets t = (1 - eps) onehot(y) + eps / K.  Backward, since sum_k t_nk = 1:

.. math::  \partial L / \partial z_{nk} = (p_{nk} - t_{nk}) / N
"""
import numpy as np

from ..backend import get_array_module
from ._validate import check_array

__all__ = ["softmax_cross_entropy_forward", "softmax_cross_entropy_backward", "log_softmax"]


def log_softmax(z):
    """Row-wise log-softmax of (N, K) logits, computed stably."""
    # BEGIN SOLUTION log_softmax
    xp = get_array_module(z)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    # END SOLUTION


def _check_labels(logits, labels):
    xp = get_array_module(logits, labels)
    if not hasattr(labels, "dtype") or labels.dtype.kind not in "iu":
        kind = getattr(labels, "dtype", type(labels).__name__)
        raise TypeError(f"cross_entropy: expected integer class labels, got {kind}")
    N, K = logits.shape
    if labels.shape != (N,):
        raise ValueError(
            f"cross_entropy: expected labels of shape ({N},) for logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)}"
        )
    if N and (bool((labels < 0).any()) or bool((labels >= K).any())):
        low, high = int(labels.min()), int(labels.max())
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {K - 1}] for {K} classes, got values in "
            f"[{low}, {high}]"
        )
    return xp


def softmax_cross_entropy_forward(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy of softmax(logits) against integer labels.

    Parameters
    ----------
    logits : array (N, K), float32 or float64
    labels : int array (N,)
    label_smoothing : float in [0, 1]

    Returns
    -------
    loss : 0-d array of the logits' dtype
    cache : (probabilities, targets)
    """
    check_array(logits, "cross_entropy", name="logits", ndim=2)
    xp = _check_labels(logits, labels)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    # BEGIN SOLUTION softmax_ce_forward
    N, K = logits.shape
    log_p = log_softmax(logits)
    targets = xp.full((N, K), label_smoothing / K, dtype=logits.dtype)
    targets[xp.arange(N), labels] += logits.dtype.type(1 - label_smoothing)
    loss = -(targets * log_p).sum() / logits.dtype.type(N)
    return loss, (xp.exp(log_p), targets)
    # END SOLUTION


def softmax_cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax - targets) / N, shape (N, K)."""
    # BEGIN SOLUTION softmax_ce_backward
    p, targets = cache
    scale = p.dtype.type(np.asarray(dloss).item() / p.shape[0])
    return (p - targets) * scale
    # END SOLUTION
