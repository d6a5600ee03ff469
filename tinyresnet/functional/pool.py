r"""Max pooling, average pooling and global (adaptive 1x1) average pooling.

Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), floor mode, Ho = floor((H + 2p - d(k-1) - 1)/s) + 1.

Both poolings walk over the kh*kw kernel taps; each tap is one strided view of the padded input
covering every window at once (the same ``_tap`` slices im2col uses), so there is no loop over
the batch or the output pixels.

Max pooling pads with -inf (padding never wins) and routes the whole gradient of a window to one
element: the first maximum in scan order, as PyTorch does.

.. math::  dx_{\arg\max(\text{window})} \mathrel{+}= dy_{\text{window}}

Average pooling spreads dy evenly:  dx += dy / |window| for each element of the window, where
|window| counts the padding (``count_include_pad=True``, PyTorch's default) or not.
"""
import numpy as np

from ..backend import get_array_module
from ._validate import check_array, check_window_args
from .im2col import _tap, conv_output_shape

__all__ = [
    "maxpool2d_forward",
    "maxpool2d_backward",
    "maxpool2d_forward_naive",
    "maxpool2d_backward_naive",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "global_avgpool2d_forward",
    "global_avgpool2d_backward",
]


def _pool_args(x, kernel_size, stride, padding, dilation, op):
    check_array(x, op, ndim=4)
    if stride is None:
        stride = kernel_size
    kernel_size, stride, padding, dilation = check_window_args(
        kernel_size, stride, padding, dilation, op
    )
    for k, p, d in zip(kernel_size, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(
                f"{op}: padding {padding} must be at most half the kernel span "
                f"(kernel_size {kernel_size}, dilation {dilation}), as in PyTorch"
            )
    Ho, Wo = conv_output_shape(x.shape, kernel_size, stride, padding, dilation, op=op)
    return kernel_size, stride, padding, dilation, Ho, Wo


def _pad(x, padding, value):
    xp = get_array_module(x)
    (ph, pw) = padding
    if not (ph or pw):
        return x
    N, C, H, W = x.shape
    padded = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph : ph + H, pw : pw + W] = x
    return padded


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    """Max pooling.

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), default kernel_size
    padding : int or (int, int), at most half the kernel; padded with -inf
    dilation : int or (int, int)

    Returns
    -------
    y : array (N, C, Ho, Wo)
    cache : (argmax tap index per output, geometry)
    """
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, dilation, "maxpool2d"
    )
    xp = get_array_module(x)
    padded = _pad(x, padding, -np.inf)
    kh, kw = kernel_size
    y = None
    argmax = xp.zeros(x.shape[:2] + (Ho, Wo), dtype=np.int16)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            tap = padded[:, :, rows, columns]
            if y is None:
                y = tap.copy()
                continue
            # strictly greater keeps the first maximum; NaN wins, so it propagates like PyTorch
            better = (tap > y) | xp.isnan(tap)
            y = xp.where(better, tap, y)
            argmax[better] = i * kw + j
    cache = (argmax, x.shape, kernel_size, stride, padding, dilation)
    return y, cache


def maxpool2d_backward(dy, cache):
    """Gradient of max pooling: each window's dy goes to its argmax element.

    Returns dx : array (N, C, H, W)
    """
    argmax, x_shape, (kh, kw), stride, (ph, pw), dilation = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    Ho, Wo = dy.shape[2:]
    dx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    zero = dy.dtype.type(0)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            dx_pad[:, :, rows, columns] += xp.where(argmax == i * kw + j, dy, zero)
    return dx_pad[:, :, ph : ph + H, pw : pw + W]


def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0, dilation=1):
    """Reference max pooling with explicit loops over every window (the test oracle)."""
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, dilation, "maxpool2d"
    )
    xp = get_array_module(x)
    padded = _pad(x, padding, -np.inf)
    N, C = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    y = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
    where = xp.empty((N, C, Ho, Wo, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, best_at = None, None
                    for a in range(kh):
                        for b in range(kw):
                            r, s = i * sh + a * dh, j * sw + b * dw
                            if best is None or padded[n, c, r, s] > best:
                                best, best_at = padded[n, c, r, s], (r, s)
                    y[n, c, i, j] = best
                    where[n, c, i, j] = best_at
    return y, (where, x.shape, padding)


def maxpool2d_backward_naive(dy, cache):
    """Reference gradient: loop over outputs, add dy at the recorded maximum."""
    where, x_shape, (ph, pw) = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    dx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    r, s = where[n, c, i, j]
                    dx_pad[n, c, r, s] += dy[n, c, i, j]
    return dx_pad[:, :, ph : ph + H, pw : pw + W]


def _window_counts(x_shape, kernel_size, stride, padding, dilation, Ho, Wo, dtype, xp):
    """How many real (non-padding) input elements each output window covers: (Ho, Wo)."""
    _, _, H, W = x_shape
    ones = xp.zeros((1, 1, H + 2 * padding[0], W + 2 * padding[1]), dtype=dtype)
    ones[:, :, padding[0] : padding[0] + H, padding[1] : padding[1] + W] = 1
    counts = xp.zeros((1, 1, Ho, Wo), dtype=dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            counts += ones[:, :, rows, columns]
    return counts


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Average pooling (zero padding).

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size, stride (default kernel_size), padding : int or (int, int)
    count_include_pad : divide by kh*kw (True, PyTorch's default) or by the real elements only

    Returns
    -------
    y : array (N, C, Ho, Wo)
    cache : (divisor, geometry)
    """
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, 1, "avgpool2d"
    )
    xp = get_array_module(x)
    padded = _pad(x, padding, 0)
    kh, kw = kernel_size
    total = xp.zeros(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            total += padded[:, :, rows, columns]
    if count_include_pad:
        divisor = x.dtype.type(kh * kw)
    else:
        divisor = _window_counts(x.shape, kernel_size, stride, padding, dilation, Ho, Wo, x.dtype, xp)
    return total / divisor, (divisor, x.shape, kernel_size, stride, padding)


def avgpool2d_backward(dy, cache):
    """Gradient of average pooling: every element of a window gets dy / |window|."""
    divisor, x_shape, (kh, kw), stride, (ph, pw) = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    Ho, Wo = dy.shape[2:]
    share = dy / divisor
    dx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, Ho, Wo, stride, (1, 1))
            dx_pad[:, :, rows, columns] += share
    return dx_pad[:, :, ph : ph + H, pw : pw + W]


def global_avgpool2d_forward(x):
    """Adaptive average pooling to 1x1: y[n, c] = mean over (h, w) of x[n, c].

    Returns y : array (N, C, 1, 1), cache : the input shape
    """
    check_array(x, "global_avgpool2d", ndim=4)
    return x.mean(axis=(2, 3), keepdims=True), x.shape


def global_avgpool2d_backward(dy, cache):
    """dx[n, c, h, w] = dy[n, c] / (H*W): the mean spreads its gradient evenly."""
    xp = get_array_module(dy)
    H, W = cache[2:]
    return xp.broadcast_to(dy / dy.dtype.type(H * W), cache).copy()
