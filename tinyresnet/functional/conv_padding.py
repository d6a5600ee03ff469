"""The padding spellings ``"same"`` and ``"valid"`` of torch.nn.Conv2d.

``"valid"`` is no padding.  ``"same"`` (stride 1 only, as in PyTorch) keeps the output the size of
the input: each axis needs ``d*(k-1)`` padded elements in all.  When that total is odd (an even
kernel), PyTorch puts the extra element on the right (bottom) side: left = total // 2,
right = total - left.  The symmetric part becomes ordinary ``padding``; the odd element is a zero
row/column appended to x before the convolution, and cropped off dx after it.
"""
from typing import NamedTuple

from ..backend import get_array_module
from ._validate import pair

__all__ = ["resolve_padding"]


class PaddedCache(NamedTuple):
    """The inner convolution's cache and the extra (bottom, right) padding to crop off dx."""

    inner: object
    extra: tuple
    x_shape: tuple


def resolve_padding(padding, kernel_size, stride, dilation, op="conv2d"):
    """``"same"`` / ``"valid"`` as (symmetric padding pair, extra (bottom, right) pair).

    Raises ValueError for another string, or for ``"same"`` with a stride other than 1
    (PyTorch: "padding='same' is not supported for strided convolutions").
    """
    kernel_size, dilation = pair(kernel_size, "kernel_size", op), pair(dilation, "dilation", op)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        raise ValueError(
            f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
        )
    if pair(stride, "stride", op) != (1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                         f"(stride {stride}), as in PyTorch")
    totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    left = tuple(t // 2 for t in totals)
    return left, tuple(t - 2 * h for t, h in zip(totals, left))


def padded_forward(conv_forward, x, w, b, stride, padding, dilation, groups):
    """Run ``conv_forward`` with a string padding resolved; see the module docstring."""
    left, extra = resolve_padding(padding, w.shape[2:], stride, dilation)
    if extra == (0, 0):
        return conv_forward(x, w, b, stride, left, dilation, groups)
    xp = get_array_module(x)
    x_extra = xp.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    y, inner = conv_forward(x_extra, w, b, stride, left, dilation, groups)
    return y, PaddedCache(inner, extra, tuple(x.shape))


def padded_backward(conv_backward, dy, cache):
    """The inner convolution's gradients, dx cropped back to the input's size."""
    dx, dw, db = conv_backward(dy, cache.inner)
    H, W = cache.x_shape[2:]
    return dx[:, :, :H, :W], dw, db
