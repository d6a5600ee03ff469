r"""Adaptive average and max pooling to any output size (torch.nn.AdaptiveAvgPool2d / MaxPool2d).

Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), for any Ho, Wo >= 1 (larger than H, W too).

Output row i pools input rows [start_i, end_i) with PyTorch's bounds

.. math::  \mathrm{start}_i = \lfloor i H / H_o \rfloor, \qquad
           \mathrm{end}_i = \lceil (i+1) H / H_o \rceil

(and the same for columns), so windows cover the input, may overlap by one row when H_o does not
divide H, and differ in size by at most one.  An end rounded down instead would drop the last row
of some windows.

Average pooling is separable: a window's mean is the mean over its rows of the means over its
columns, so with the averaging matrices A_h (Ho, H), A_h[i, h] = 1/(end_i - start_i) on the
window and 0 elsewhere,

.. math::  y = A_h \, x \, A_w^\top, \qquad dx = A_h^\top \, dy \, A_w

two small matrix products, forward and backward, with no loop over windows.

Max pooling gathers every window at once, padded to the largest window size by repeating its last
index (a repeated element changes neither the maximum nor which element is first), and sends each
window's gradient to its first maximum in scan order, or to its last NaN, as PyTorch's kernel
does (``val > max || isnan(val)``).
"""
import numpy as np

from ..backend import get_array_module
from ._validate import check_array

__all__ = [
    "adaptive_window_bounds",
    "adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward",
    "adaptive_maxpool2d_forward", "adaptive_maxpool2d_backward",
    "adaptive_avgpool2d_forward_naive", "adaptive_maxpool2d_forward_naive",
    "adaptive_pool2d_backward_naive",
]


def adaptive_window_bounds(size, out):
    """[(start_i, end_i) for i < out]: PyTorch's windows of an axis of ``size`` pooled to
    ``out``."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _output_size(x, output_size, op):
    """(Ho, Wo) from an int, a pair, or a pair with None (keep that axis's size), as PyTorch."""
    check_array(x, op, ndim=4)
    if not isinstance(output_size, (tuple, list)):  # one size for both axes
        output_size = (output_size, output_size)
    try:
        Ho, Wo = output_size
    except (TypeError, ValueError) as err:
        raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}") from err
    Ho, Wo = (x.shape[2] if Ho is None else Ho), (x.shape[3] if Wo is None else Wo)
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (Ho, Wo)):
        raise ValueError(f"{op}: output_size must be positive integers, got {output_size!r}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: expected a non-empty input, got shape {tuple(x.shape)}")
    return int(Ho), int(Wo)


def _averaging_matrix(size, out, xp, dtype):
    """A (out, size): row i holds 1/|window i| on window i's input positions."""
    a = np.zeros((out, size))
    for i, (start, end) in enumerate(adaptive_window_bounds(size, out)):
        a[i, start:end] = 1.0 / (end - start)
    return xp.asarray(a, dtype=dtype)


def adaptive_avgpool2d_forward(x, output_size):
    """Adaptive average pooling.

    Parameters
    ----------
    x : array (N, C, H, W)
    output_size : int, (int, int), or a pair with None (that axis keeps its size)

    Returns
    -------
    y : array (N, C, Ho, Wo)
    cache : (A_h, A_w), the averaging matrices
    """
    Ho, Wo = _output_size(x, output_size, "adaptive_avgpool2d")
    xp = get_array_module(x)
    a_h = _averaging_matrix(x.shape[2], Ho, xp, x.dtype)
    a_w = _averaging_matrix(x.shape[3], Wo, xp, x.dtype)
    return a_h @ x @ a_w.T, (a_h, a_w)


def adaptive_avgpool2d_backward(dy, cache):
    """dx = A_h^T dy A_w: each input element gets the shares of every window that holds it."""
    a_h, a_w = cache
    return a_h.T @ dy @ a_w


def _gather_index(size, out, xp):
    """(out, k) input indices of each window, k the largest window, short ones repeating their
    last index."""
    bounds = adaptive_window_bounds(size, out)
    k = max(end - start for start, end in bounds)
    index = np.array([[min(start + t, end - 1) for t in range(k)] for start, end in bounds])
    return xp.asarray(index)


def adaptive_maxpool2d_forward(x, output_size):
    """Adaptive max pooling.

    Parameters
    ----------
    x : array (N, C, H, W)
    output_size : int, (int, int), or a pair with None

    Returns
    -------
    y : array (N, C, Ho, Wo)
    cache : (flat index into H*W of each output's maximum, x's shape)
    """
    Ho, Wo = _output_size(x, output_size, "adaptive_maxpool2d")
    xp = get_array_module(x)
    N, C, H, W = x.shape
    rows, cols = _gather_index(H, Ho, xp), _gather_index(W, Wo, xp)
    kh, kw = rows.shape[1], cols.shape[1]
    # (N, C, Ho, kh, Wo, kw) -> (N, C, Ho, Wo, kh*kw), the window in scan order
    windows = x[:, :, rows[:, :, None, None], cols[None, None, :, :]]
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, kh * kw)
    tap = windows.argmax(axis=-1)  # the first maximum
    nan = xp.isnan(windows)
    if nan.any():
        last_nan = kh * kw - 1 - nan[..., ::-1].argmax(axis=-1)
        tap = xp.where(nan.any(axis=-1), last_nan, tap)
    y = xp.take_along_axis(windows, tap[..., None], axis=-1)[..., 0]
    flat = rows[:, None, :, None] * W + cols[None, :, None, :]  # (Ho, Wo, kh, kw)
    where = xp.take_along_axis(
        xp.broadcast_to(flat.reshape(Ho, Wo, kh * kw), (N, C, Ho, Wo, kh * kw)), tap[..., None],
        axis=-1,
    )[..., 0]
    return y, (where, x.shape)


def adaptive_maxpool2d_backward(dy, cache):
    """Each window's dy goes to its maximum; overlapping windows that share it add up."""
    where, (N, C, H, W) = cache
    xp = get_array_module(dy)
    dx = xp.zeros((N * C, H * W), dtype=dy.dtype)
    base = (xp.arange(N * C) * (H * W))[:, None]
    xp.add.at(dx.reshape(-1), (where.reshape(N * C, -1) + base).reshape(-1), dy.reshape(-1))
    return dx.reshape(N, C, H, W)


def adaptive_avgpool2d_forward_naive(x, output_size):
    """Reference: loop over the output pixels, mean of each window (the test oracle)."""
    return _naive(x, output_size, "adaptive_avgpool2d", average=True)


def adaptive_maxpool2d_forward_naive(x, output_size):
    """Reference: loop over the output pixels, first maximum of each window (NaN wins, last)."""
    return _naive(x, output_size, "adaptive_maxpool2d", average=False)


def _naive(x, output_size, op, average):
    Ho, Wo = _output_size(x, output_size, op)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    y = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
    weights = []  # per output: list of ((h, w), weight in dy/dx)
    for i, (h0, h1) in enumerate(adaptive_window_bounds(H, Ho)):
        for j, (w0, w1) in enumerate(adaptive_window_bounds(W, Wo)):
            for n in range(N):
                for c in range(C):
                    window = x[n, c, h0:h1, w0:w1]
                    if average:
                        y[n, c, i, j] = window.sum() / window.size
                        weights.append(((n, c, i, j), (slice(h0, h1), slice(w0, w1)),
                                        1.0 / window.size))
                        continue
                    best, at = None, None
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            v = x[n, c, h, w]
                            if best is None or v > best or xp.isnan(v):
                                best, at = v, (h, w)
                    y[n, c, i, j] = best
                    weights.append(((n, c, i, j), at, 1.0))
    return y, (weights, x.shape)


def adaptive_pool2d_backward_naive(dy, cache):
    """Reference gradient of either naive pooling: dy times each element's weight in its window."""
    weights, x_shape = cache
    xp = get_array_module(dy)
    dx = xp.zeros(x_shape, dtype=dy.dtype)
    for (n, c, i, j), at, weight in weights:
        dx[(n, c) + tuple(at)] += dy[n, c, i, j] * dy.dtype.type(weight)
    return dx
