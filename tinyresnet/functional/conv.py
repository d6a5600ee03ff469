r"""2-D convolution (cross-correlation, as in PyTorch) by im2col and one matrix product.

Shapes: x (N, C, H, W), w (F, C, kh, kw), b (F,) or None, y (N, F, Ho, Wo).

Forward, with K = C*kh*kw and P = N*Ho*Wo:

.. math::  Y_{(F, P)} = W_{(F, K)} \, \mathrm{cols}_{(K, P)} + b

Backward is the same product read in reverse, one line per forward line:

.. math::
    dW = dY \, \mathrm{cols}^\top, \qquad db = \textstyle\sum_{n, h, w} dY, \qquad
    d\mathrm{cols} = W^\top dY, \qquad dx = \mathrm{col2im}(d\mathrm{cols})

``col2im`` of ``W^T dY`` is a *full* convolution of dY with the flipped kernel: every input pixel
collects the gradient of each output whose window covered it.

The output y is returned with channel-major memory (a transposed view of the (F, N, Ho, Wo) product),
so no copy is made; NumPy ufuncs keep that memory order, and the next im2col reads it for free.

Fast paths, each tested equal to the loop references (``conv2d_forward_naive``):

* 1x1 convolutions (ResNet's bottlenecks and projections) skip im2col: their columns are the input
  pixels, a free view of a channel-major x; a strided one slices first and copies only the pixels
  it reads.
* For stride 1 (and F <= C), dx is computed as the full convolution of dy with the flipped,
  transposed kernel (``_full_conv_input_grad``) instead of ``col2im(W^T dY)``; see there why it is
  faster.  The same columns of dy give dw against x's pixels (``_full_conv_weight_grad``): one
  im2col in backward.
* Memory: by default the forward keeps x, not its columns (``set_im2col_recompute``); a strided
  convolution unfolds x again in backward.  Columns that live within one call go to a reused
  scratch buffer (``im2col._workspace``) instead of fresh tens of megabytes per call.
* Those column matrices get a padded row stride when a row would span a multiple of 4 KiB
  (``set_column_padding``): CIFAR's power-of-two pixel counts otherwise put the rows BLAS packs
  together into the same cache sets.
* dw's product puts its taller operand first (``set_taller_operand_first``), which OpenBLAS runs
  faster.
* The unfolding and its products run a few images at a time, so the columns are multiplied while
  in cache, with the batch split over the CPU's cores (conv_blocked.py, ``set_blocked_im2col``,
  ``set_num_threads``).
* ``input_grad=False`` (a network's first layer, ``nn.skip_input_grad``) computes dw and db alone.
* The arguments are checked once, here (``conv_grouped.check_conv_args``, grouped or not); the helpers called after trust them.
"""
from ..backend import get_array_module
from .conv_blocked import _times_transpose, unfold_backward, unfold_times
from .conv_grouped import (
    GroupedCache, check_conv_args, GroupedNaiveCache, conv2d_grouped_backward, conv2d_grouped_backward_naive,
    conv2d_grouped_forward, conv2d_grouped_forward_naive,
)
from .conv_padding import PaddedCache, padded_backward, padded_forward
# The public im2col, col2im and conv_output_shape are what a student writes conv2d with (the A1
# release stubs the regions below); the library's own code calls their unchecked twins, its input
# already checked once by check_conv_args.
from .im2col import _col2im, _columns, _im2col, _output_shape, col2im, conv_output_shape, im2col  # noqa: F401
from .parallel import matmul

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "set_im2col_recompute",
]

_recompute = True


def set_im2col_recompute(enabled):
    """Choose what conv2d_forward keeps for the backward pass; returns the previous setting.

    True (the default): keep the input x.  The columns of a kxk convolution are k*k times larger
    than x (9x for 3x3), so keeping them for every layer of a network costs about 9x its
    activations' memory (gigabytes for CIFAR ResNet-56 at batch 128).  Backward of a stride-1
    convolution with F <= C needs no columns of x (dy's give dw too, see _full_conv_weight_grad);
    the others unfold x again, one more im2col: a copy, cheap next to the matrix products.

    False: keep the columns, which saves that copy for strided and widening convolutions when
    memory is plentiful.

    1x1 convolutions keep their input pixels either way: they have no columns to unfold.
    """
    global _recompute
    previous, _recompute = _recompute, bool(enabled)
    return previous


def _is_pointwise(w, padding):
    """A 1x1 kernel without padding: the convolution is a plain matrix product over pixels."""
    return w.shape[2:] == (1, 1) and tuple(padding) == (0, 0)


def _pixels(x, stride):
    """The (C, N*Ho*Wo) matrix of a 1x1 convolution's input pixels, taken every stride-th.

    Free (a view) when x has channel-major memory and stride 1; a strided 1x1 convolution slices
    first, so it copies only the Ho*Wo pixels it reads, not an im2col of the whole input.
    """
    (sh, sw) = stride
    x_cn = x.transpose(1, 0, 2, 3)[:, :, ::sh, ::sw]
    return x_cn.reshape(x_cn.shape[0], -1)


def _full_padding(w, stride, padding, dilation):
    """The padding of dx's full convolution, when backward should compute dx as one (else None).

    With stride 1, dx is dy convolved with the kernel flipped in space and transposed in its
    channels, padded by d*(k-1) - p: every input pixel gathers the outputs whose window held it.
    That needs d*(k-1) >= p, true of every usual padding ("same" convolutions included).  It
    unfolds dy, F channels, where col2im's way unfolds x, C channels: it pays when F <= C, as in
    every ResNet layer but the stem (3 -> 16 or 64 channels), which takes col2im's way.
    """
    F, C, kh, kw = w.shape
    (dh, dw), (ph, pw) = dilation, padding
    if tuple(stride) != (1, 1) or dh * (kh - 1) < ph or dw * (kw - 1) < pw or F > C:
        return None
    return dh * (kh - 1) - ph, dw * (kw - 1) - pw


def _full_conv_input_grad(dy, w, x_shape, full_padding, dilation, x2=None):
    """dx of a stride-1 convolution as the full convolution of dy (see _full_padding).

    Faster than col2im(W^T dY): its product has the long inner dimension F*kh*kw instead of F
    (BLAS runs a small-K product at a fraction of its speed, most so for ResNet's 16-channel
    CIFAR layers), im2col's copies replace col2im's read-modify-write additions, and dx comes out
    of the product directly, channel-major, without a padded buffer.

    x2 : x's pixels (C, N*H*W), or None.  Returns dx (N, C, H, W) and, when x2 is given, the
    product x2 @ dy_cols.T (C, F*kh*kw) of x's pixels with the same columns of dy, which is dw
    flipped and transposed (_full_conv_weight_grad); else None.  Both products come from one
    unfolding of dy, block by block of images (conv_blocked.unfold_times).
    """
    # BEGIN SOLUTION conv_full_input_grad
    F, C, kh, kw = w.shape
    N, _, H, W = x_shape
    w_t = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].reshape(C, F * kh * kw)
    dx2, x2_dy_cols = unfold_times(w_t, dy, (kh, kw), (1, 1), full_padding, dilation, b=x2)
    return dx2.reshape(C, N, H, W).transpose(1, 0, 2, 3), x2_dy_cols
    # END SOLUTION


def _full_conv_weight_grad(x2_dy_cols, w_shape):
    """dw of a stride-1 convolution from x2 @ dy_cols.T: x's pixels (C, N*H*W) times dy's
    full-padded columns (F*kh*kw, N*H*W), transposed (_full_conv_input_grad computes it).

    Row (f, i', j') of dy's columns, at input pixel p, holds the output that pixel meets through
    kernel tap (kh-1-i', kw-1-j'); so x2 dy_cols^T sums x * dy over every (pixel, output) pair
    of each tap, which is dw, flipped and transposed.  This spares backward a second unfolding
    (of x, when the forward kept x instead of its columns): one im2col serves dx and dw.
    """
    # BEGIN SOLUTION conv_full_weight_grad
    xp = get_array_module(x2_dy_cols)
    F, C, kh, kw = w_shape
    dw_t = x2_dy_cols.reshape(C, F, kh, kw)
    return xp.ascontiguousarray(dw_t[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    # END SOLUTION


def _unpixels(dcols, x_shape, stride):
    """Adjoint of _pixels: the (C, N*Ho*Wo) gradient back on the pixels it came from, 0 elsewhere."""
    # BEGIN SOLUTION conv_unpixels
    xp = get_array_module(dcols)
    N, C, H, W = x_shape
    (sh, sw) = stride
    if (sh, sw) == (1, 1):
        return dcols.reshape(C, N, H, W).transpose(1, 0, 2, 3)
    dx = xp.zeros((C, N, H, W), dtype=dcols.dtype)
    sub = dx[:, :, ::sh, ::sw]
    sub[...] = dcols.reshape(sub.shape)
    return dx.transpose(1, 0, 2, 3)
    # END SOLUTION


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Convolve x with w (and add b).

    Parameters
    ----------
    x : array (N, C, H, W)
    w : array (F, C/groups, kh, kw)
    b : array (F,) or None
    stride, dilation : int or (int, int)
    padding : int, (int, int), or "same" / "valid" (conv_padding.py)
    groups : int dividing C and F; > 1 runs conv_grouped.py

    Returns
    -------
    y : array (N, F, Ho, Wo)
    cache : what conv2d_backward needs (the columns, the weight, the geometry)
    """
    if isinstance(padding, str):
        return padded_forward(conv2d_forward, x, w, b, stride, padding, dilation, groups)
    if groups != 1:
        return conv2d_grouped_forward(x, w, b, stride, padding, dilation, groups)
    stride, padding, dilation = check_conv_args(x, w, b, stride, padding, dilation)
    # BEGIN SOLUTION conv_forward
    F, C, kh, kw = w.shape
    N = x.shape[0]
    Ho, Wo = _output_shape(x.shape, (kh, kw), stride, padding, dilation)

    if _is_pointwise(w, padding):
        saved = _pixels(x, stride)  # (C, P): a 1x1 convolution's columns are the input pixels
        y = matmul(w.reshape(F, -1), saved)  # (F, P): the whole batch in one GEMM
    elif _recompute:
        # keep x, not its kh*kw times larger columns: W @ im2col(x), unfolded block by block of
        # images into a reused buffer (conv_blocked.py)
        y, _ = unfold_times(w.reshape(F, -1), x, (kh, kw), stride, padding, dilation)
        saved = x
    else:
        saved = _im2col(x, (kh, kw), stride, padding, dilation,
                        out=_columns(x, C * kh * kw, N * Ho * Wo, scratch=False))  # (K, P)
        y = matmul(w.reshape(F, -1), saved)
    if b is not None:
        y += b[:, None]
    y = y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    cache = (saved, x.shape, w, b is not None, stride, padding, dilation)
    return y, cache
    # END SOLUTION


def conv2d_backward(dy, cache, input_grad=True):
    """Gradients of conv2d.

    Parameters
    ----------
    dy : array (N, F, Ho, Wo)
    cache : from conv2d_forward
    input_grad : False skips dx, as PyTorch skips grad_input for an input that does not require
        a gradient (a network's first layer, whose input is the data); dx is then None

    Returns
    -------
    dx : array (N, C, H, W), or None
    dw : array (F, C, kh, kw)
    db : array (F,), or None when the forward had no bias
    """
    if isinstance(cache, (PaddedCache, GroupedCache)):
        grads = (padded_backward(conv2d_backward, dy, cache) if isinstance(cache, PaddedCache)
                 else conv2d_grouped_backward(dy, cache))
        return (grads[0] if input_grad else None,) + tuple(grads[1:])
    # BEGIN SOLUTION conv_backward
    saved, x_shape, w, has_bias, stride, padding, dilation = cache
    F, K = w.shape[0], w[0].size
    dy2 = dy.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, P); free when dy is channel-major
    db = dy2.sum(axis=1) if has_bias else None
    if not input_grad:  # dW = dY cols^T alone
        if saved.ndim == 2:  # x's pixels (1x1) or its kept columns
            dw = _times_transpose(dy2, saved)
        else:  # unfold x again, block by block, for that one product
            _, dw = unfold_times(None, saved, w.shape[2:], stride, padding, dilation, b=dy2)
        return None, dw.reshape(w.shape), db
    full_padding = _full_padding(w, stride, padding, dilation)
    if _is_pointwise(w, padding):
        dw = _times_transpose(dy2, saved).reshape(w.shape)  # dy2 @ saved.T
        dx = _unpixels(matmul(w.reshape(F, -1).T, dy2), x_shape, stride)
    elif full_padding is not None:
        if saved.ndim == 2:  # the forward kept x's columns
            dx, _ = _full_conv_input_grad(dy, w, x_shape, full_padding, dilation)
            dw = _times_transpose(dy2, saved).reshape(w.shape)  # dy2 @ saved.T
        else:  # it kept x: dy's columns give dw, no second unfolding
            dx, x2_dy_cols = _full_conv_input_grad(dy, w, x_shape, full_padding, dilation,
                                                   x2=_pixels(saved, (1, 1)))
            dw = _full_conv_weight_grad(x2_dy_cols, w.shape)
    elif saved.ndim == 4:  # the forward kept x, not its columns: unfold it again, block by block
        dx, dw = unfold_backward(w.reshape(F, -1), dy2, saved, w.shape[2:], stride, padding,
                                 dilation)
        dw = dw.reshape(w.shape)
    else:
        dw = _times_transpose(dy2, saved).reshape(w.shape)  # dy2 @ cols.T
        dcols = matmul(w.reshape(F, -1).T, dy2, out=_columns(dy, K, dy2.shape[1]))  # W^T dY
        dx = _col2im(dcols, x_shape, w.shape[2:], stride, padding, dilation)
    return dx, dw, db
    # END SOLUTION


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Reference convolution with explicit loops over samples, filters and output pixels.

    Slow and obvious on purpose: it is the oracle the fast conv2d_forward is tested against.
    ``groups`` > 1 runs one such convolution per group of channels.
    """
    if isinstance(padding, str):
        return padded_forward(conv2d_forward_naive, x, w, b, stride, padding, dilation, groups)
    if groups != 1:
        return conv2d_grouped_forward_naive(conv2d_forward_naive, x, w, b, stride, padding,
                                            dilation, groups)
    stride, padding, dilation = check_conv_args(x, w, b, stride, padding, dilation)
    # BEGIN SOLUTION conv_forward_naive
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = _output_shape(x.shape, (kh, kw), stride, padding, dilation)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = xp.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = x_pad[
                        n, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                        j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                    ]
                    y[n, f, i, j] = (window * w[f]).sum() + (b[f] if b is not None else 0)
    return y, (x, w, b is not None, stride, padding, dilation)
    # END SOLUTION


def conv2d_backward_naive(dy, cache):
    """Reference gradients with the same loops: each output scatters dy into its window."""
    if isinstance(cache, PaddedCache):
        return padded_backward(conv2d_backward_naive, dy, cache)
    if isinstance(cache, GroupedNaiveCache):
        return conv2d_grouped_backward_naive(conv2d_backward_naive, dy, cache)
    # BEGIN SOLUTION conv_backward_naive
    x, w, has_bias, (sh, sw), (ph, pw), (dh, dw) = cache
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    Ho, Wo = dy.shape[2:]
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dx_pad = xp.zeros_like(x_pad)
    dw_ = xp.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    columns = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    dw_[f] += dy[n, f, i, j] * x_pad[n, :, rows, columns]
                    dx_pad[n, :, rows, columns] += dy[n, f, i, j] * w[f]
    dx = dx_pad[:, :, ph : ph + H, pw : pw + W]
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw_, db
    # END SOLUTION
