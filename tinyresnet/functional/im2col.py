"""im2col and col2im: unfold every receptive field of an image batch into a column.

With the patches as columns, a convolution becomes one matrix product (Chellapilla et al. 2006):

    cols = im2col(x)            # (C*kh*kw, N*Ho*Wo)
    y    = w.reshape(F, -1) @ cols

Row ``c*kh*kw + i*kw + j`` of ``cols`` holds input channel ``c`` seen through kernel tap ``(i, j)``,
which is exactly how ``w.reshape(F, C*kh*kw)`` orders a filter.  Column ``n*Ho*Wo + oh*Wo + ow``
is output pixel ``(oh, ow)`` of sample ``n``.

Why this layout: the input is first put channel-major, (C, N, Hp, Wp), so that for each of the
kh*kw kernel taps the strided slice ``xp[:, :, i*d : ... : s, j*d : ... : s]`` is copied into
``cols[c, i, j]`` in one NumPy call whose inner runs are contiguous.  That is kh*kw large copies,
no Python loop over the batch or the output pixels.  ``col2im`` is the adjoint: the same slices, with
``+=`` instead of ``=``, because overlapping windows add their gradients.
"""
import math
import threading

from ..backend import get_array_module
from ._validate import check_array, check_window_args, window_output_size
from .parallel import parallel_for

__all__ = ["im2col", "col2im", "conv_output_shape", "set_column_padding"]

_workspaces = threading.local()  # per thread: (array module, device, dtype) -> a flat buffer
_pad_columns = True
_ALIASING_BYTES = 4096  # a row stride that is a multiple of this maps the rows onto few cache sets
_ROW_PAD_BYTES = 1024


def conv_output_shape(x_shape, kernel_size, stride=1, padding=0, dilation=1, op="im2col"):
    """(Ho, Wo) of a floor-mode sliding window over an (N, C, H, W) input.

    Raises TypeError or ValueError (naming ``op``) for malformed window arguments or a kernel that
    does not fit the padded input.
    """
    return _output_shape(x_shape, *check_window_args(kernel_size, stride, padding, dilation, op),
                         op=op)


def _output_shape(x_shape, kernel_size, stride, padding, dilation, op="im2col"):
    """conv_output_shape for window arguments that check_window_args has already made pairs."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    Ho = window_output_size(x_shape[2], kh, sh, ph, dh, op, "height")
    Wo = window_output_size(x_shape[3], kw, sw, pw, dw, op, "width")
    return Ho, Wo


def _tap(i, j, Ho, Wo, stride, dilation):
    """The (rows, cols) slices of the padded input that kernel tap (i, j) sees, for all outputs."""
    (sh, sw), (dh, dw) = stride, dilation
    return (
        slice(i * dh, i * dh + sh * (Ho - 1) + 1, sh),
        slice(j * dw, j * dw + sw * (Wo - 1) + 1, sw),
    )


def _workspace(x, shape, slot=0):
    """A scratch array of ``shape`` and x's dtype and device, reused from call to call.

    For columns that live only within one op call (conv2d's columns when they are recomputed,
    and the column gradient in its backward).  A fresh array of that size is tens of megabytes
    that the OS must map and zero page by page on first touch, on every call; reusing one buffer
    per thread skips that, at the price of keeping the largest one alive between calls.
    ``slot``: another number gives another buffer, for a second scratch array alive at once.
    """
    xp = get_array_module(x)
    size = math.prod(shape)
    key = (xp.__name__, str(getattr(x, "device", "cpu")), x.dtype.str, slot)
    buffer = _workspaces.__dict__.get(key)
    if buffer is None or buffer.size < size:
        buffer = xp.empty(size, dtype=x.dtype)
        _workspaces.__dict__[key] = buffer
    return buffer[:size].reshape(shape)


def set_column_padding(enabled):
    """Choose whether column matrices get a padded row stride; returns the previous setting.

    True (the default): when a row of the (K, P) column matrix would span a multiple of 4 KiB
    (P = N*Ho*Wo is a power of two for CIFAR's batch 128: 131072 floats, 512 KiB), its rows are
    laid out 1 KiB further apart, and the matrix is a view of the first P columns.  With a
    power-of-two stride the K rows that BLAS reads together while it packs the matrix all fall into
    the same few cache sets and evict each other; on an AVX-512 host with OpenBLAS's SkylakeX kernel
    that made the CIFAR convolutions' products 1.3-1.5x slower (16 channels: 22 ms against 15 ms
    for ``W @ cols``, one thread).  Shapes whose stride is not such a multiple (ResNet-50's at
    batch 8) are not padded.

    False: plain C-contiguous (K, P) columns, as a lesson writes them.
    """
    global _pad_columns
    previous, _pad_columns = _pad_columns, bool(enabled)
    return previous


def _columns(x, rows, n, scratch=True, slot=0):
    """An empty (rows, n) matrix of x's dtype and device for columns, its rows contiguous.

    ``scratch``: in the reused buffer (``_workspace``, that ``slot``) for columns that die within
    one call, else fresh memory.  The row stride is padded as ``set_column_padding`` describes.
    """
    itemsize = x.dtype.itemsize
    stride = n
    if _pad_columns and (n * itemsize) % _ALIASING_BYTES == 0:
        stride = n + _ROW_PAD_BYTES // itemsize
    if scratch:
        buffer = _workspace(x, (rows, stride), slot)
    else:
        buffer = get_array_module(x).empty((rows, stride), dtype=x.dtype)
    return buffer[:, :n]


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, out=None):
    """Unfold the receptive fields of x into columns.

    Parameters
    ----------
    x : array (N, C, H, W)
    kernel_size, stride, padding, dilation : int or (int, int)
    out : array (C*kh*kw, N*Ho*Wo) with contiguous rows (C-contiguous, or a view of the first
        columns of a wider array), to write the columns into; default a new one

    Returns
    -------
    cols : array (C*kh*kw, N*Ho*Wo), same dtype and device as x, with
        Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1 (and likewise Wo).
    """
    check_array(x, "im2col", ndim=4, floating=False)
    kernel_size, stride, padding, dilation = check_window_args(
        kernel_size, stride, padding, dilation, "im2col"
    )
    (kh, kw), C = kernel_size, x.shape[1]
    Ho, Wo = _output_shape(x.shape, kernel_size, stride, padding, dilation)
    if out is not None and (out.shape != (C * kh * kw, x.shape[0] * Ho * Wo)
                            or not _rows_contiguous(out)):
        raise ValueError(
            f"im2col: out must be an array of shape {(C * kh * kw, x.shape[0] * Ho * Wo)} with "
            f"contiguous rows, got shape {tuple(out.shape)}"
            + ("" if _rows_contiguous(out) else f" and strides {out.strides}")
        )
    return _im2col(x, kernel_size, stride, padding, dilation, out)


def _im2col(x, kernel_size, stride, padding, dilation, out=None, split=True):
    """im2col for a caller that has validated its arguments: window arguments as pairs, a
    kernel that fits, an ``out`` of the right shape with contiguous rows (or None).  The ops
    check their input once at their own boundary; this spares every layer a second check.

    On the CPU the channels are split over ``parallel.set_num_threads`` threads (``split``): each
    copies its channels' padded images and their kh*kw taps, rows no other thread writes.  A
    caller already running on one of several threads (conv_blocked.py) passes split=False.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (ph, pw) = kernel_size, padding
    Ho, Wo = _output_shape(x.shape, kernel_size, stride, padding, dilation)

    x_cn = x.transpose(1, 0, 2, 3)  # channel-major view; free when x already has that memory order
    if ph or pw:
        padded = xp.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    if out is None:
        out = xp.empty((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    cols = out.reshape(C, kh, kw, N, Ho, Wo)

    def unfold(c0, c1):
        source = x_cn[c0:c1]
        if ph or pw:
            source = _pad(padded[c0:c1], source, ph, pw)
        for i in range(kh):
            for j in range(kw):
                rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
                cols[c0:c1, i, j] = source[:, :, rows, columns]

    if split:
        parallel_for(unfold, C, out.size, xp)
    else:
        unfold(0, C)
    return out


def _pad(padded, x_cn, ph, pw):
    """Write x_cn (C, N, H, W) into the middle of ``padded`` and zeros around it; returns padded.
    (Zeroing the border alone: a zeroed fresh array would be written twice.)"""
    H, W = x_cn.shape[2:]
    padded[:, :, :ph] = 0
    padded[:, :, ph + H:] = 0
    padded[:, :, ph:ph + H, :pw] = 0
    padded[:, :, ph:ph + H, pw + W:] = 0
    padded[:, :, ph:ph + H, pw:pw + W] = x_cn
    return padded


def _rows_contiguous(a):
    """A 2-D array whose rows are contiguous and do not overlap: it reshapes into im2col's
    (C, kh, kw, N, Ho, Wo) view without a copy."""
    if a.ndim != 2:
        return False
    rows, n = a.shape
    return (n <= 1 or a.strides[1] == a.itemsize) and (rows <= 1 or a.strides[0] >= n * a.itemsize)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns back into an image, summing where windows overlap (the adjoint of im2col).

    Parameters
    ----------
    cols : array (C*kh*kw, N*Ho*Wo)
    x_shape : (N, C, H, W) of the image im2col unfolded

    Returns
    -------
    x : array (N, C, H, W).  Its memory is channel-major (a transposed view of a (C, N, H, W)
        buffer), which is what the next im2col or batch-norm reduction reads fastest.
    """
    kernel_size, stride, padding, dilation = check_window_args(
        kernel_size, stride, padding, dilation, "col2im"
    )
    N, C = x_shape[:2]
    (kh, kw) = kernel_size
    Ho, Wo = _output_shape(x_shape, kernel_size, stride, padding, dilation, op="col2im")
    if cols.shape != (C * kh * kw, N * Ho * Wo):
        raise ValueError(
            f"col2im: expected cols of shape {(C * kh * kw, N * Ho * Wo)} for x_shape "
            f"{tuple(x_shape)}, got {tuple(cols.shape)}"
        )
    return _col2im(cols, x_shape, kernel_size, stride, padding, dilation)


def _col2im(cols, x_shape, kernel_size, stride, padding, dilation, padded=None, split=True):
    """col2im for a caller that has validated its arguments (pairs, matching shapes).

    ``padded``: a zeroed (C, N, H + 2*ph, W + 2*pw) array to sum into (default: a new one); the
    result is a view of it.  On the CPU the channels are split over threads (``split``), as in
    _im2col: each sums its own channels."""
    xp = get_array_module(cols)
    N, C, H, W = x_shape
    (kh, kw), (ph, pw) = kernel_size, padding
    Ho, Wo = _output_shape(x_shape, kernel_size, stride, padding, dilation, op="col2im")
    cols6 = cols.reshape(C, kh, kw, N, Ho, Wo)
    if padded is None:
        padded = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)

    def fold(c0, c1):
        for i in range(kh):
            for j in range(kw):
                rows, columns = _tap(i, j, Ho, Wo, stride, dilation)
                padded[c0:c1, :, rows, columns] += cols6[c0:c1, i, j]

    if split:
        parallel_for(fold, C, cols.size, xp)
    else:
        fold(0, C)
    return padded[:, :, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3)
