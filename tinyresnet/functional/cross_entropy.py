r"""Cross-entropy with PyTorch's ``reduction`` and ``ignore_index`` (F.cross_entropy's options).

Shapes: logits z (N, K), labels y (N,) in [0, K) or equal to ``ignore_index`` (default -100).

A sample labelled ``ignore_index`` has no targets (t_n = 0): it costs 0 and gets no gradient.
With the per-sample losses :math:`\ell_n = -\sum_k t_{nk} \log p_{nk}` (label-smoothed targets
t as in loss.py) and the set S of samples not ignored:

.. math::
    L_{\mathrm{mean}} = \frac{1}{|S|} \sum_{n \in S} \ell_n, \qquad
    L_{\mathrm{sum}} = \sum_{n \in S} \ell_n, \qquad
    L_{\mathrm{none}} = (\ell_n)_n, \qquad
    \frac{\partial \ell_n}{\partial z_{nk}} = [n \in S]\,(p_{nk} - t_{nk})

(``mean`` over no sample at all is NaN with a zero gradient, as in PyTorch).  The default, a mean
with nothing ignored, is exactly ``softmax_cross_entropy_forward`` (the pair a lesson writes, loss.py), which
this file calls for it.
"""
from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from ._validate import check_array
from .loss import (
    _check_labels, log_softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward,
)

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyCache(NamedTuple):
    """Either the plain mean's cache (``plain``), or what the general backward needs."""

    plain: object = None
    p: object = None
    targets: object = None
    kept: object = None
    reduction: str = "mean"
    count: int = 0


def cross_entropy_forward(logits, labels, label_smoothing=0.0, reduction="mean",
                          ignore_index=-100):
    """Softmax cross-entropy as torch.nn.functional.cross_entropy.

    Parameters
    ----------
    logits : array (N, K), float32 or float64
    labels : int array (N,), in [0, K) or equal to ignore_index
    label_smoothing : float in [0, 1]
    reduction : "mean" (over the samples not ignored), "sum" or "none"
    ignore_index : int

    Returns
    -------
    loss : 0-d array of the logits' dtype, or (N,) for reduction="none"
    cache : CrossEntropyCache

    Raises ValueError for an unknown reduction or labels out of range (ignored ones aside),
    TypeError for non-integer labels.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
        )
    check_array(logits, "cross_entropy", name="logits", ndim=2)
    xp = get_array_module(logits)
    if not hasattr(labels, "dtype") or labels.dtype.kind not in "iu" or \
            labels.shape != logits.shape[:1]:
        _check_labels(logits, labels)  # raises its TypeError or ValueError
    kept = labels != ignore_index
    if reduction == "mean" and bool(kept.all()):
        loss, cache = softmax_cross_entropy_forward(logits, labels, label_smoothing)
        return loss, CrossEntropyCache(plain=cache)
    _check_labels(logits[kept], labels[kept])  # the range of the labels that count
    labels = xp.where(kept, labels, 0)  # a valid row for the ignored; their targets become 0
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    N, K = logits.shape
    log_p = log_softmax(logits)
    targets = xp.full((N, K), label_smoothing / K, dtype=logits.dtype)
    targets[xp.arange(N), labels] += logits.dtype.type(1 - label_smoothing)
    targets *= kept[:, None]
    count = int(kept.sum())
    if reduction == "none":
        loss = -(targets * log_p).sum(axis=1)
    else:
        loss = -(targets * log_p).sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # nothing kept: NaN, as torch
                loss = loss / logits.dtype.type(count)
    return loss, CrossEntropyCache(None, xp.exp(log_p), targets, kept, reduction, count)


def cross_entropy_backward(dloss, cache):
    """dlogits (N, K): dloss * (softmax - targets), divided by the samples kept for "mean"; dloss
    is a number, or an array (N,) for reduction="none".  Rows of ignored samples are 0."""
    if cache.plain is not None:
        return softmax_cross_entropy_backward(dloss, cache.plain)
    p, targets, kept = cache.p, cache.targets, cache.kept
    xp = get_array_module(p)
    if cache.reduction == "none":
        scale = xp.asarray(dloss, dtype=p.dtype).reshape(-1, 1)
    else:
        divisor = cache.count if cache.reduction == "mean" else 1
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = p.dtype.type(np.asarray(dloss).item()) / p.dtype.type(divisor)
    # where, not a product with the mask: with every sample ignored the mean's scale is 1/0,
    # and ignored rows still get exactly 0 (PyTorch's gradient there)
    with np.errstate(invalid="ignore"):
        return xp.where(kept[:, None], (p - targets) * scale, p.dtype.type(0))
