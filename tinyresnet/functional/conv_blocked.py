r"""A convolution's unfolding and its products, one block of images at a time, on every core.

conv.py writes a kxk convolution as im2col and one matrix product over the whole batch:

.. math::  Y = A \, \mathrm{cols}(x), \qquad G = B \, \mathrm{cols}(x)^\top

(forward: A = W, no G; a stride-1 backward: x = dy, A = the flipped kernel, B = x's pixels, which
gives dx and dw from one unfolding).  The columns are kh*kw times the input: 75 MB for a
16-channel CIFAR layer at batch 128, written by im2col and read back by BLAS from main memory.
Images are independent in both products (Y's columns are per image, G is a sum over images), so
``unfold_times`` computes them a block of a few images at a time: each block's columns (about
``BLOCK_BYTES``) are unfolded into a per-thread scratch buffer and multiplied while they are still
in the core's cache.  The batch is split over ``parallel.set_num_threads`` threads, each running
single-threaded BLAS on its own blocks, and each summing its own part of G.  Caffe unfolded one
image at a time for the memory; here it is for the cache and the cores.

The values are those of the whole-batch product up to float round-off: G sums its blocks in
another order.  ``set_blocked_im2col(False)`` unfolds the whole batch and multiplies once, as the
formulas read (tested equal).
"""
from ..backend import get_array_module
from .im2col import _col2im, _columns, _im2col, _output_shape
from .parallel import blas_single_threaded, get_num_threads, matmul, parallel_for

__all__ = ["set_blocked_im2col", "set_taller_operand_first", "unfold_times", "unfold_backward"]

BLOCK_BYTES = 1 << 21  # columns per block: about 2 MiB, the size that measured fastest (see docs)
WEIGHT_FACTOR = 4
_blocked = True
_taller_first = True


def set_blocked_im2col(enabled):
    """Choose whether conv2d unfolds and multiplies block by block of images (True, the default)
    or the whole batch at once (False); returns the previous setting."""
    global _blocked
    previous, _blocked = _blocked, bool(enabled)
    return previous


def set_taller_operand_first(enabled):
    """Choose how backward multiplies for dw; returns the previous setting.

    dw is a product ``a @ b.T`` of two matrices with P = N*Ho*Wo columns each (dY and the
    columns, or x's pixels and dy's columns).  True (the default): the operand with more rows goes
    on the left, ``(b @ a.T).T`` when b is taller.  OpenBLAS packs the right-hand operand and
    streams the left one; with the taller one streamed, the products of the CIFAR convolutions ran
    10-17% faster (16 channels: 13.5 against 16.2 ms) and ResNet-50's about 5%, measured on an
    AMD EPYC with the SkylakeX kernel, one thread.  False: ``a @ b.T`` as the formula reads.
    """
    global _taller_first
    previous, _taller_first = _taller_first, bool(enabled)
    return previous


def _times_transpose(a, b):
    """a @ b.T for two matrices with the same number of columns (see set_taller_operand_first)."""
    if _taller_first and b.shape[0] > a.shape[0]:
        return matmul(b, a.T).T
    return matmul(a, b.T)


def _one_piece(column_bytes):
    """One thread and columns of about two blocks or less: the whole batch at once costs less
    Python per layer (the small images of the digits)."""
    return get_num_threads() == 1 and column_bytes <= 2 * BLOCK_BYTES


def images_per_block(image_bytes, weight_bytes):
    """How many images' columns fill about BLOCK_BYTES (at least one), and at least
    WEIGHT_FACTOR times the other operand: BLAS packs that one again for every block."""
    return max(1, max(BLOCK_BYTES, WEIGHT_FACTOR * weight_bytes) // image_bytes)


def unfold_times(a, x, kernel_size, stride, padding, dilation, b=None):
    """Y = a @ im2col(x) (unless a is None) and, when b is given, G = b @ im2col(x).T.

    a : (R, K) with K = C*kh*kw, or None;  x : (N, C, H, W);  b : (S, N*Ho*Wo) or None.
    Returns Y (R, N*Ho*Wo), its columns ordered as im2col's (image, row, column), or None; and
    G (S, K) or None.  Arguments are trusted (the conv ops check them at their boundary).
    """
    xp = get_array_module(x)
    N, C = x.shape[:2]
    K = C * kernel_size[0] * kernel_size[1]
    Ho, Wo = _output_shape(x.shape, kernel_size, stride, padding, dilation)
    HW = Ho * Wo
    if not _blocked or xp.__name__ != "numpy" or _one_piece(N * K * HW * x.dtype.itemsize):
        cols = _im2col(x, kernel_size, stride, padding, dilation, out=_columns(x, K, N * HW))
        return (None if a is None else matmul(a, cols)), (None if b is None else _times_transpose(b, cols))

    y = None if a is None else xp.empty((a.shape[0], N * HW), dtype=x.dtype)
    per_block = images_per_block(K * HW * x.dtype.itemsize, 0 if a is None else a.nbytes)
    sums = {}  # first image of a thread's share -> its part of the sum

    def work(n0, n1):
        g = None  # this thread's part of G
        for lo in range(n0, n1, per_block):
            hi = min(lo + per_block, n1)
            cols = _im2col(x[lo:hi], kernel_size, stride, padding, dilation,
                           out=_columns(x, K, (hi - lo) * HW), split=False)
            if a is not None:
                xp.matmul(a, cols, out=y[:, lo * HW : hi * HW])
            if b is not None:
                part = _times_transpose(b[:, lo * HW : hi * HW], cols)
                if g is None:
                    g = part
                else:
                    g += part
        sums[n0] = g

    with blas_single_threaded():
        parallel_for(work, N, elements=N * K * HW)
    return y, (None if b is None else _in_batch_order(sums))


def unfold_backward(w2, dy2, x, kernel_size, stride, padding, dilation):
    r"""dx and dw of a convolution whose backward unfolds x again (strided or widening layers).

    .. math::  dW = dY \, \mathrm{cols}(x)^\top, \qquad dx = \mathrm{col2im}(W^\top dY)

    w2 : (F, K) the kernel as a matrix;  dy2 : (F, N*Ho*Wo);  x : (N, C, H, W), the input the
    forward kept.  Returns dx (N, C, H, W), channel-major, and dW (F, K).  Block by block of
    images, as unfold_times: each block's columns give its part of dW, then its column gradient
    (into a second scratch buffer) is folded into its own images of dx, which no other block
    touches.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, K = w2.shape
    (ph, pw) = padding
    Ho, Wo = _output_shape(x.shape, kernel_size, stride, padding, dilation)
    HW = Ho * Wo
    geometry = (kernel_size, stride, padding, dilation)
    if not _blocked or xp.__name__ != "numpy" or _one_piece(N * K * HW * x.dtype.itemsize):
        cols = _im2col(x, *geometry, out=_columns(x, K, N * HW))
        dw = _times_transpose(dy2, cols)
        dcols = matmul(w2.T, dy2, out=_columns(x, K, N * HW))  # the columns are spent: reuse
        return _col2im(dcols, x.shape, *geometry), dw

    padded = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    per_block = images_per_block(K * HW * x.dtype.itemsize, w2.nbytes)
    sums = {}  # first image of a thread's share -> its part of the sum

    def work(n0, n1):
        g = None  # this thread's part of dW
        for lo in range(n0, n1, per_block):
            hi = min(lo + per_block, n1)
            dy_block = dy2[:, lo * HW : hi * HW]
            cols = _im2col(x[lo:hi], *geometry, out=_columns(x, K, (hi - lo) * HW), split=False)
            part = _times_transpose(dy_block, cols)
            if g is None:
                g = part
            else:
                g += part
            dcols = xp.matmul(w2.T, dy_block, out=_columns(x, K, (hi - lo) * HW, slot=1))
            _col2im(dcols, (hi - lo, C, H, W), *geometry, padded=padded[:, lo:hi], split=False)
        sums[n0] = g

    with blas_single_threaded():
        parallel_for(work, N, elements=2 * N * K * HW)
    return padded[:, :, ph : ph + H, pw : pw + W].transpose(1, 0, 2, 3), _in_batch_order(sums)


def _in_batch_order(parts):
    """The threads' partial sums added in the order of their images, not of their finishing
    (which varies from run to run): the same thread count gives the same bits every time."""
    first, *rest = sorted(parts)
    total = parts[first]
    for key in rest:
        total += parts[key]
    return total
