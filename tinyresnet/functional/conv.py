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
"""
from ..backend import get_array_module
from ._validate import check_array, check_same_dtype, check_window_args
from .im2col import col2im, conv_output_shape, im2col

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive"]


def _check_conv_args(x, w, b, stride, padding, dilation):
    check_array(x, "conv2d", ndim=4)
    check_array(w, "conv2d", name="weight", ndim=4)
    check_same_dtype("conv2d", input=x, weight=w, bias=b)
    F, C, kh, kw = w.shape
    if x.shape[1] != C:
        raise ValueError(
            f"conv2d: expected input with {C} channels, shape (N, {C}, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    if b is not None and tuple(b.shape) != (F,):
        raise ValueError(f"conv2d: expected bias of shape ({F},), got {tuple(b.shape)}")
    kernel_size, stride, padding, dilation = check_window_args(
        (kh, kw), stride, padding, dilation, "conv2d"
    )
    conv_output_shape(x.shape, kernel_size, stride, padding, dilation, op="conv2d")
    return stride, padding, dilation


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """Convolve x with w (and add b).

    Parameters
    ----------
    x : array (N, C, H, W)
    w : array (F, C, kh, kw)
    b : array (F,) or None
    stride, padding, dilation : int or (int, int)

    Returns
    -------
    y : array (N, F, Ho, Wo)
    cache : what conv2d_backward needs (the columns, the weight, the geometry)
    """
    stride, padding, dilation = _check_conv_args(x, w, b, stride, padding, dilation)
    # BEGIN SOLUTION conv_forward
    F, C, kh, kw = w.shape
    N = x.shape[0]
    Ho, Wo = conv_output_shape(x.shape, (kh, kw), stride, padding, dilation)

    cols = im2col(x, (kh, kw), stride, padding, dilation)  # (K, P)
    y = w.reshape(F, -1) @ cols  # (F, P): the whole batch in one GEMM
    if b is not None:
        y += b[:, None]
    y = y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    cache = (cols, x.shape, w, b is not None, stride, padding, dilation)
    return y, cache
    # END SOLUTION


def conv2d_backward(dy, cache):
    """Gradients of conv2d.

    Parameters
    ----------
    dy : array (N, F, Ho, Wo)
    cache : from conv2d_forward

    Returns
    -------
    dx : array (N, C, H, W)
    dw : array (F, C, kh, kw)
    db : array (F,), or None when the forward had no bias
    """
    # BEGIN SOLUTION conv_backward
    cols, x_shape, w, has_bias, stride, padding, dilation = cache
    F = w.shape[0]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, P); free when dy is channel-major
    dw = (dy2 @ cols.T).reshape(w.shape)
    db = dy2.sum(axis=1) if has_bias else None
    dcols = w.reshape(F, -1).T @ dy2  # (K, P)
    dx = col2im(dcols, x_shape, w.shape[2:], stride, padding, dilation)
    return dx, dw, db
    # END SOLUTION


def conv2d_forward_naive(x, w, b=None, stride=1, padding=0, dilation=1):
    """Reference convolution with explicit loops over samples, filters and output pixels.

    Slow and obvious on purpose: it is the oracle the fast conv2d_forward is tested against.
    """
    stride, padding, dilation = _check_conv_args(x, w, b, stride, padding, dilation)
    # BEGIN SOLUTION conv_forward_naive
    xp = get_array_module(x)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    Ho, Wo = conv_output_shape(x.shape, (kh, kw), stride, padding, dilation)
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
