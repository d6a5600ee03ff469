r"""Max pooling, average pooling and global (adaptive 1x1) average pooling.

Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), floor mode, Ho = floor((H + 2p - d(k-1) - 1)/s) + 1.

``ceil_mode=True`` rounds up instead, Ho = ceil((H + 2p - d(k-1) - 1)/s) + 1, so a last, partial
window covers the input's remainder; as in PyTorch, that window is dropped again when it would
start inside the right padding (``(Ho - 1)*s >= H + p``), so every window holds a real element.
The part of a window past the padded input counts as padding beyond it (-inf for max pooling,
nothing for average pooling: PyTorch divides by the window clipped to the padded input, or to the
input when ``count_include_pad=False``).

Both poolings walk over the kh*kw kernel taps; each tap is one strided view of the padded input
covering every window at once (the same ``_tap`` slices im2col uses), so there is no loop over
the batch or the output pixels.  Max pooling (the ResNet stem's 3x3/2) first splits the input into
stride phases (``_phase_planes``), so that each tap is a contiguous slice (NumPy walks the
single-element runs of a stride-2 view several times slower), and its backward is one scatter-add
(``add.at``) of dy at each window's maximum instead of a masked add per tap.

Max pooling pads with -inf (padding never wins) and routes the whole gradient of a window to one
element: the first maximum in scan order, as PyTorch does.

.. math::  dx_{\arg\max(\text{window})} \mathrel{+}= dy_{\text{window}}

Average pooling spreads dy evenly:  dx += dy / |window| for each element of the window, where
|window| counts the padding (``count_include_pad=True``, PyTorch's default) or not.
"""
import numpy as np

from ..backend import get_array_module
from ._validate import check_array, check_window_args
from .im2col import _tap, _workspace, conv_output_shape
from .parallel import parallel_for

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


def _ceil_output_size(size, kernel, stride, padding, dilation):
    """PyTorch's ceil-mode output size (pooling_output_shape): round up, then drop a last window
    that would start inside the right padding."""
    out = -(-(size + 2 * padding - dilation * (kernel - 1) - 1) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _padded_extent(size, padding, out, kernel, stride, dilation):
    """Length of the padded axis every window fits in: the input and both paddings, plus what a
    ceil-mode last window runs past them."""
    return max(size + 2 * padding, (out - 1) * stride + dilation * (kernel - 1) + 1)


def _pool_args(x, kernel_size, stride, padding, dilation, op, ceil_mode=False):
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
    if ceil_mode:
        Ho, Wo = (_ceil_output_size(*args) for args in
                  zip(x.shape[2:], kernel_size, stride, padding, dilation))
    return kernel_size, stride, padding, dilation, Ho, Wo


def _pad(x, padding, value, extent=None):
    """x padded by ``padding`` on each side with ``value``, to ``extent`` (Hp, Wp) when given (a
    ceil-mode window runs past the right padding)."""
    xp = get_array_module(x)
    (ph, pw) = padding
    N, C, H, W = x.shape
    Hp, Wp = extent or (H + 2 * ph, W + 2 * pw)
    if (Hp, Wp) == (H, W):
        return x
    padded = xp.full((N, C, Hp, Wp), value, dtype=x.dtype)
    padded[:, :, ph : ph + H, pw : pw + W] = x
    return padded


def _phase_planes(x_cn, kernel_size, stride, padding, dilation, Ho, Wo, fill):
    """Lay a channel-major input out so that every kernel tap is one slice with long runs.

    A tap of a strided window is a strided view of the padded input (``_tap``): for stride 2 its
    inner runs are single elements, and NumPy walks such a view several times slower than
    contiguous memory.  Splitting the padded input into its sh*sw *phases* (rows r*sh + a,
    columns s*sw + b) turns every tap into a plain shift of one phase plane: tap (i, j) reads
    plane ``(i*dh % sh, j*dw % sw)`` from row ``i*dh // sh``, column ``j*dw // sw`` on.  Read
    as a flat run of ``Ho * Wq`` elements per image, each tap is one contiguous slice; it covers
    a "wide" grid of Ho x Wq outputs whose last ``Wq - Wo`` columns are wrap-around garbage,
    cut off at the end.  Building the planes is one pass over x.

    Parameters
    ----------
    x_cn : array (C, N, H, W)
    kernel_size, stride, padding, dilation : pairs;  Ho, Wo : output size
    fill : value of the padding

    Returns
    -------
    tap : function (i, j) -> view (C*N, Ho*Wq) of the planes, the wide grid of tap (i, j); the
        planes live in the reused scratch buffer, valid until its next use
    Wq : width of the wide grid
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    C, N, H, W = x_cn.shape
    # one spare row: the wide slice of the last output row runs past its plane's last row
    Hq, Wq = Ho + (kh - 1) * dh // sh + 1, Wo + (kw - 1) * dw // sw
    planes = _workspace(x_cn, (sh, sw, C, N, Hq, Wq))  # scratch: they die with the forward call
    planes.fill(fill)
    for a in range(sh):
        h0 = (a - ph) % sh  # the first input row that lands in row phase a
        r0, nr = (ph + h0) // sh, min(Hq - (ph + h0) // sh, len(range(h0, H, sh)))
        for b in range(sw):
            w0 = (b - pw) % sw
            s0, ns = (pw + w0) // sw, min(Wq - (pw + w0) // sw, len(range(w0, W, sw)))
            if nr > 0 and ns > 0:
                planes[a, b, :, :, r0 : r0 + nr, s0 : s0 + ns] = x_cn[
                    :, :, h0 : h0 + sh * (nr - 1) + 1 : sh, w0 : w0 + sw * (ns - 1) + 1 : sw
                ]
    flat = planes.reshape(sh, sw, C * N, Hq * Wq)

    def tap(i, j):
        start = (i * dh // sh) * Wq + j * dw // sw
        return flat[i * dh % sh, j * dw % sw, :, start : start + Ho * Wq]

    return tap, Wq


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling.

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), default kernel_size
    padding : int or (int, int), at most half the kernel; padded with -inf
    dilation : int or (int, int)
    ceil_mode : round the output size up (PyTorch's rule, module docstring)

    Returns
    -------
    y : array (N, C, Ho, Wo), with channel-major memory (a transposed view of (C, N, Ho, Wo)),
        as conv2d returns
    cache : (argmax tap index per output, geometry)
    """
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, dilation, "maxpool2d", ceil_mode
    )
    # BEGIN SOLUTION maxpool_forward
    xp = get_array_module(x)
    N, C = x.shape[:2]
    kh, kw = kernel_size
    x_cn = x.transpose(1, 0, 2, 3)  # channel-major, like the convolutions around it: free when
    # x comes from a conv/BN/ReLU
    y = xp.empty((C, N, Ho, Wo), dtype=x.dtype)
    # The tap index fits a byte for every usual kernel; it is all backward needs.
    argmax = xp.empty((C, N, Ho, Wo), dtype=np.min_scalar_type(kh * kw - 1))
    taps = [(i, j) for i in range(kh) for j in range(kw)]

    def pool(c0, c1):  # channels c0..c1-1 (the channels are split over the CPU's cores)
        tap, Wq = _phase_planes(x_cn[c0:c1], kernel_size, stride, padding, dilation, Ho, Wo,
                                -np.inf)
        y_c = tap(0, 0).copy()
        argmax_c = xp.zeros(y_c.shape, dtype=argmax.dtype)
        better = xp.empty(y_c.shape, dtype=bool)
        for k, (i, j) in enumerate(taps[1:], start=1):
            xp.greater(tap(i, j), y_c, out=better)  # strictly: the first maximum in scan order wins
            # argmax = where(better, k, argmax), written as unsigned arithmetic (k - argmax wraps
            # around and adds back to k): a few times faster than np.where or a masked assignment.
            argmax_c += better * (argmax_c.dtype.type(k) - argmax_c)
            xp.maximum(y_c, tap(i, j), out=y_c)  # propagates NaN, as PyTorch's max pooling does
        if xp.isnan(y_c).any():
            # A window holding NaN sends its gradient to its last NaN, as PyTorch's kernel does
            # (it takes an element when ``val > max || isnan(val)``); rare, so done apart.
            for k, (i, j) in enumerate(taps):
                argmax_c[xp.isnan(tap(i, j))] = k
        # cut the wide grid's garbage columns off
        y[c0:c1] = y_c.reshape(c1 - c0, N, Ho, Wq)[..., :Wo]
        argmax[c0:c1] = argmax_c.reshape(c1 - c0, N, Ho, Wq)[..., :Wo]

    parallel_for(pool, C, x.size, xp)
    cache = (argmax, x.shape, kernel_size, stride, padding, dilation)
    return y.transpose(1, 0, 2, 3), cache
    # END SOLUTION


def maxpool2d_backward(dy, cache):
    """Gradient of max pooling: each window's dy goes to its argmax element.

    Returns dx : array (N, C, H, W), with channel-major memory
    """
    # BEGIN SOLUTION maxpool_backward
    argmax, x_shape, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    Ho, Wo = dy.shape[2:]
    Hp, Wp = _padded_extent(H, ph, Ho, kh, sh, dh), _padded_extent(W, pw, Wo, kw, sw, dw)
    # One scatter-add of dy at the flat index of each window's maximum in the padded
    # channel-major input, (C, N, Hp, Wp): window origin + offset of its argmax tap.  Faster than
    # a masked add per kernel tap; windows that overlap (stride < kernel) and pick the same
    # element add up, as they must.
    tap_offset = xp.asarray([i * dh * Wp + j * dw for i in range(kh) for j in range(kw)])
    window = ((xp.arange(N) * Hp)[:, None, None] + (xp.arange(Ho) * sh)[:, None]) * Wp
    window = window + xp.arange(Wo) * sw  # (N, Ho, Wo): each window's origin in one channel
    dx_pad = xp.zeros((C, N * Hp * Wp), dtype=dy.dtype)
    dy_cn = dy.transpose(1, 0, 2, 3)

    def scatter(c0, c1):  # channels c0..c1-1 (split over the CPU's cores), in rows c0..c1-1
        rows = (xp.arange(c1 - c0) * (N * Hp * Wp))[:, None, None, None]
        index = tap_offset[argmax[c0:c1]] + window + rows
        xp.add.at(dx_pad[c0:c1].reshape(-1), index.reshape(-1), dy_cn[c0:c1].reshape(-1))

    parallel_for(scatter, C, dy.size, xp)
    dx_pad = dx_pad.reshape(C, N, Hp, Wp)
    return dx_pad[:, :, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3)
    # END SOLUTION


def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Reference max pooling with explicit loops over every window (the test oracle)."""
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, dilation, "maxpool2d", ceil_mode
    )
    # BEGIN SOLUTION maxpool_forward_naive
    xp = get_array_module(x)
    N, C = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    extent = (_padded_extent(x.shape[2], padding[0], Ho, kh, sh, dh),
              _padded_extent(x.shape[3], padding[1], Wo, kw, sw, dw))
    padded = _pad(x, padding, -np.inf, extent)
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
    return y, (where, x.shape, padding, extent)
    # END SOLUTION


def maxpool2d_backward_naive(dy, cache):
    """Reference gradient: loop over outputs, add dy at the recorded maximum."""
    # BEGIN SOLUTION maxpool_backward_naive
    where, x_shape, (ph, pw), extent = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    dx_pad = xp.zeros((N, C) + extent, dtype=dy.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    r, s = where[n, c, i, j]
                    dx_pad[n, c, r, s] += dy[n, c, i, j]
    return dx_pad[:, :, ph : ph + H, pw : pw + W]
    # END SOLUTION


def _window_counts(x_shape, kernel_size, stride, padding, dilation, Ho, Wo, dtype, xp, extent,
                   include_pad):
    """How many elements each output window covers: (Ho, Wo).  Real input elements only, or
    (``include_pad``) those and the padding, never what a ceil-mode window runs past it."""
    _, _, H, W = x_shape
    ones = xp.zeros((1, 1) + extent, dtype=dtype)
    if include_pad:
        ones[:, :, : H + 2 * padding[0], : W + 2 * padding[1]] = 1
    else:
        ones[:, :, padding[0] : padding[0] + H, padding[1] : padding[1] + W] = 1
    counts = xp.zeros((1, 1, Ho, Wo), dtype=dtype)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            counts += ones[:, :, rows, columns]
    return counts


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True,
                      ceil_mode=False):
    """Average pooling (zero padding).

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size, stride (default kernel_size), padding : int or (int, int)
    count_include_pad : divide by kh*kw (True, PyTorch's default) or by the real elements only
    ceil_mode : round the output size up (PyTorch's rule, module docstring)

    Returns
    -------
    y : array (N, C, Ho, Wo)
    cache : (divisor, geometry)
    """
    kernel_size, stride, padding, dilation, Ho, Wo = _pool_args(
        x, kernel_size, stride, padding, 1, "avgpool2d", ceil_mode
    )
    xp = get_array_module(x)
    kh, kw = kernel_size
    extent = (_padded_extent(x.shape[2], padding[0], Ho, kh, stride[0], 1),
              _padded_extent(x.shape[3], padding[1], Wo, kw, stride[1], 1))
    padded = _pad(x, padding, 0, extent)
    total = xp.zeros(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
            total += padded[:, :, rows, columns]
    if count_include_pad and extent == tuple(s + 2 * p for s, p in zip(x.shape[2:], padding)):
        divisor = x.dtype.type(kh * kw)  # no window runs past the padding
    else:
        divisor = _window_counts(x.shape, kernel_size, stride, padding, dilation, Ho, Wo, x.dtype,
                                 xp, extent, count_include_pad)
    return total / divisor, (divisor, x.shape, kernel_size, stride, padding)


def avgpool2d_backward(dy, cache):
    """Gradient of average pooling: every element of a window gets dy / |window|."""
    divisor, x_shape, (kh, kw), stride, (ph, pw) = cache
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    Ho, Wo = dy.shape[2:]
    share = dy / divisor
    extent = (_padded_extent(H, ph, Ho, kh, stride[0], 1),
              _padded_extent(W, pw, Wo, kw, stride[1], 1))
    dx_pad = xp.zeros((N, C) + extent, dtype=dy.dtype)
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
    """dx[n, c, h, w] = dy[n, c] / (H*W): the mean spreads its gradient evenly.

    dx has channel-major memory, as the convolutions' gradients it flows into expect.
    """
    xp = get_array_module(dy)
    N, C, H, W = cache
    share = (dy / dy.dtype.type(H * W)).reshape(N, C).T[:, :, None, None]
    return xp.ascontiguousarray(xp.broadcast_to(share, (C, N, H, W))).transpose(1, 0, 2, 3)
