r"""Grouped 2-D convolution (``groups`` in torch.nn.Conv2d), as one batched matrix product.

Shapes: x (N, C, H, W), w (F, C/g, kh, kw), b (F,) or None, y (N, F, Ho, Wo), with g the number
of groups; C and F are multiples of g.  Output channels ``[f*F/g, (f+1)*F/g)`` see only the input
channels ``[f*C/g, (f+1)*C/g)``: the weight matrix is block-diagonal (ResNeXt's "cardinality",
Xie et al. 2017; g = C is a depthwise convolution).

im2col orders its rows channel by channel (row ``c*kh*kw + i*kw + j``), so the rows of group f
are one contiguous block of K_g = C/g*kh*kw rows.  With P = N*Ho*Wo:

.. math::
    Y_{(g, F/g, P)} = W_{(g, F/g, K_g)} \, \mathrm{cols}_{(g, K_g, P)}, \qquad
    dW = dY \, \mathrm{cols}^\top, \qquad d\mathrm{cols} = W^\top dY

each a single ``matmul`` batched over the groups (no Python loop over groups); ``col2im`` folds
dcols back to dx as for an ungrouped convolution.  The forward keeps x, not its columns (they are
kh*kw times larger), and unfolds it again in backward.
"""
from typing import NamedTuple

from ..backend import get_array_module
from ._validate import check_array, check_same_dtype, check_window_args
from .im2col import _col2im, _im2col, _output_shape

__all__ = [
    "conv2d_grouped_forward", "conv2d_grouped_backward",
    "conv2d_grouped_forward_naive", "conv2d_grouped_backward_naive",
]


class GroupedCache(NamedTuple):
    """What conv2d_grouped_backward needs; its own type, so conv2d_backward can dispatch on it."""

    x: object
    w: object
    has_bias: bool
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


def check_conv_args(x, w, b, stride, padding, dilation, groups=1, op="conv2d"):
    """Validate a convolution's operands once, at the op's boundary (grouped or not); returns the
    normalised (stride, padding, dilation) pairs.  The helpers called after it trust them."""
    check_array(x, op, ndim=4)
    check_array(w, op, name="weight", ndim=4)
    check_same_dtype(op, input=x, weight=w, bias=b)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    F, Cg, kh, kw = w.shape
    if F % groups:
        raise ValueError(f"{op}: out_channels {F} (weight.shape[0]) must be divisible by "
                         f"groups={groups}")
    if x.shape[1] != Cg * groups:
        grouped = f" (weight {tuple(w.shape)} with groups={groups})" if groups > 1 else ""
        raise ValueError(
            f"{op}: expected input with {Cg * groups} channels{grouped}, shape "
            f"(N, {Cg * groups}, H, W), got shape {tuple(x.shape)}"
        )
    if b is not None and tuple(b.shape) != (F,):
        raise ValueError(f"{op}: expected bias of shape ({F},), got {tuple(b.shape)}")
    kernel_size, stride, padding, dilation = check_window_args((kh, kw), stride, padding,
                                                               dilation, op)
    _output_shape(x.shape, kernel_size, stride, padding, dilation, op=op)
    return stride, padding, dilation


def conv2d_grouped_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Grouped convolution of x with w (and b).

    Parameters
    ----------
    x : array (N, C, H, W)
    w : array (F, C/groups, kh, kw)
    b : array (F,) or None
    stride, padding, dilation : int or (int, int)
    groups : int dividing C and F

    Returns
    -------
    y : array (N, F, Ho, Wo)
    cache : GroupedCache

    Raises ValueError when C or F is not a multiple of groups, or the channels do not match.
    """
    stride, padding, dilation = check_conv_args(x, w, b, stride, padding, dilation, groups)
    F, Cg, kh, kw = w.shape
    N = x.shape[0]
    Ho, Wo = _output_shape(x.shape, (kh, kw), stride, padding, dilation)
    cols = _im2col(x, (kh, kw), stride, padding, dilation).reshape(groups, Cg * kh * kw, -1)
    y = (w.reshape(groups, F // groups, -1) @ cols).reshape(F, -1)  # block-diagonal W @ cols
    if b is not None:
        y += b[:, None]
    y = y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    return y, GroupedCache(x, w, b is not None, stride, padding, dilation, groups)


def conv2d_grouped_backward(dy, cache):
    """Gradients of the grouped convolution: (dx (N, C, H, W), dw like w, db (F,) or None)."""
    x, w, has_bias, stride, padding, dilation, groups = cache
    F, Cg, kh, kw = w.shape
    dy2 = dy.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, P)
    db = dy2.sum(axis=1) if has_bias else None
    dy3 = dy2.reshape(groups, F // groups, -1)  # (g, F/g, P)
    cols = _im2col(x, (kh, kw), stride, padding, dilation).reshape(groups, Cg * kh * kw, -1)
    dw = (dy3 @ cols.transpose(0, 2, 1)).reshape(w.shape)
    dcols = w.reshape(groups, F // groups, -1).transpose(0, 2, 1) @ dy3  # (g, K_g, P)
    dx = _col2im(dcols.reshape(groups * Cg * kh * kw, -1), x.shape, (kh, kw), stride, padding,
                 dilation)
    return dx, dw, db


def conv2d_grouped_forward_naive(conv_naive, x, w, b=None, stride=1, padding=0, dilation=1,
                                 groups=1):
    """Reference: the definition read literally, one ungrouped naive convolution per group on its
    slice of channels, outputs concatenated along the channels.  ``conv_naive`` is
    conv2d_forward_naive (passed in: conv.py imports this file)."""
    stride, padding, dilation = check_conv_args(x, w, b, stride, padding, dilation, groups)
    xp = get_array_module(x)
    F, Cg = w.shape[:2]
    Fg = F // groups
    outputs, caches = [], []
    for g in range(groups):
        y, cache = conv_naive(x[:, g * Cg:(g + 1) * Cg], w[g * Fg:(g + 1) * Fg],
                              None if b is None else b[g * Fg:(g + 1) * Fg],
                              stride, padding, dilation)
        outputs.append(y)
        caches.append(cache)
    return xp.concatenate(outputs, axis=1), GroupedNaiveCache(caches)


class GroupedNaiveCache(NamedTuple):
    """One naive convolution's cache per group."""

    caches: list


def conv2d_grouped_backward_naive(conv_backward_naive, dy, cache):
    """Reference gradients: each group's naive backward on its slice of dy, concatenated."""
    xp = get_array_module(dy)
    groups = len(cache.caches)
    Fg = dy.shape[1] // groups
    grads = [conv_backward_naive(dy[:, g * Fg:(g + 1) * Fg], c) for g, c in enumerate(cache.caches)]
    dx = xp.concatenate([d[0] for d in grads], axis=1)
    dw = xp.concatenate([d[1] for d in grads], axis=0)
    db = None if grads[0][2] is None else xp.concatenate([d[2] for d in grads])
    return dx, dw, db
