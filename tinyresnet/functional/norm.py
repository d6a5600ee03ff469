r"""Batch normalization over (N, H, W) for each channel (Ioffe & Szegedy 2015).

Shapes: x, y (N, C, H, W); gamma, beta, running_mean, running_var (C,).  M = N*H*W.

Forward (training):

.. math::
    \mu = \tfrac1M \textstyle\sum x, \quad \sigma^2 = \tfrac1M \textstyle\sum (x-\mu)^2, \quad
    \hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}, \quad y = \gamma \hat x + \beta

and the running statistics move as PyTorch moves them, ``momentum`` weighting the *new* value and
the variance stored unbiased:  r_mean <- (1 - m) r_mean + m mu,  r_var <- (1 - m) r_var + m sigma^2 M/(M-1).

Backward, compact form.  mu and sigma depend on every x, so dL/dx has three terms; collecting them
with \hat x' = d\hat x/dx gives

.. math::
    dx = \frac{\gamma}{M\sqrt{\sigma^2+\epsilon}}
         \left( M\,dy - \textstyle\sum dy - \hat x \textstyle\sum (dy\,\hat x) \right),
    \quad d\gamma = \textstyle\sum dy\,\hat x, \quad d\beta = \textstyle\sum dy

(the sum of dy removes the gradient's mean, which mu absorbs; the x-hat term removes its component
along x-hat, which sigma absorbs).  In evaluation mode mu and sigma are constants, so
dx = gamma dy / sqrt(r_var + eps).
"""
from ..backend import get_array_module
from ._validate import check_array, check_same_dtype
from .parallel import parallel_rows

__all__ = ["batchnorm2d_forward", "batchnorm2d_backward"]


def _channels(a):
    """The (C, N*H*W) matrix of an (N, C, H, W) array: a free view when its memory is
    channel-major, as conv2d's output is, else one copy.  Its rows are contiguous, so per-channel
    sums run at full speed (a reduction over axes (0, 2, 3) of NCHW memory walks short runs)."""
    return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)


def _unchannels(a2, shape):
    """Back to (N, C, H, W): a channel-major view of the (C, N*H*W) matrix."""
    N, C, H, W = shape
    return a2.reshape(C, N, H, W).transpose(1, 0, 2, 3)


def _check_args(op, x, gamma, beta, running_mean, running_var):
    """A 4-D input, and per-channel arrays (C,) of its dtype where given (batch norm's and the
    synchronized batch norm's boundary check)."""
    check_array(x, op, ndim=4)
    check_same_dtype(op, input=x, weight=gamma, bias=beta, running_mean=running_mean,
                     running_var=running_var)
    C = x.shape[1]
    for name, v in (("weight", gamma), ("bias", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is not None and tuple(v.shape) != (C,):
            raise ValueError(
                f"{op}: expected input of shape (N, {v.size}, H, W) to match {name} of "
                f"shape {tuple(v.shape)}, got {tuple(x.shape)}"
            )


def batchnorm2d_forward(
    x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5
):
    """Batch-normalize x per channel.

    Parameters
    ----------
    x : array (N, C, H, W)
    gamma, beta : array (C,), or None for no affine transform
    running_mean, running_var : array (C,) or None; updated in place when training
    training : use batch statistics (True) or the running ones (False)
    momentum : weight of the new batch statistic in the running average
    eps : added to the variance

    Returns
    -------
    y : array (N, C, H, W)
    cache : (x_hat, inv_std, gamma, training)
    """
    _check_args("batchnorm2d", x, gamma, beta, running_mean, running_var)
    xp = get_array_module(x)
    C = x.shape[1]
    # BEGIN SOLUTION batchnorm_forward
    M = x.size // C
    x2 = _channels(x)  # (C, M): every per-channel sum is a row sum
    batch_stats = training or running_mean is None
    if batch_stats and training and M < 2:
        raise ValueError(
            f"batchnorm2d: expected more than 1 value per channel when training, "
            f"got input of shape {tuple(x.shape)}"
        )
    x_hat, y = xp.empty_like(x2), xp.empty_like(x2)
    mean = xp.empty(C, dtype=x.dtype) if batch_stats else running_mean
    var = xp.empty(C, dtype=x.dtype) if batch_stats else running_var
    inv_std = xp.empty(C, dtype=x.dtype)

    def normalize(c):  # the formulas, for the channels (rows) in slice c
        x_c, x_hat_c, y_c = x2[c], x_hat[c], y[c]
        if batch_stats:
            mean[c] = x_c.mean(axis=1)
        xp.subtract(x_c, mean[c, None], out=x_hat_c)  # centred now, scaled in place below
        if batch_stats:
            var[c] = xp.einsum("cm,cm->c", x_hat_c, x_hat_c) / M  # sum of squares, no temporary
        inv_std[c] = 1 / xp.sqrt(var[c] + eps)
        x_hat_c *= inv_std[c, None]
        if gamma is not None:
            xp.multiply(x_hat_c, gamma[c, None], out=y_c)
        else:
            y_c[...] = x_hat_c
        if beta is not None:
            y_c += beta[c, None]

    # a few channels at a time, each group's passes in cache, the groups on every core
    parallel_rows(normalize, C, M * x2.itemsize, x2.size, xp)
    if training and running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * M / (M - 1)) * var
    return _unchannels(y, x.shape), (x_hat, inv_std, gamma, beta is not None, batch_stats)
    # END SOLUTION


def batchnorm2d_backward(dy, cache):
    """Gradients of batch normalization (compact form, see the module docstring).

    Returns
    -------
    dx : array (N, C, H, W)
    dgamma, dbeta : array (C,), or None without the affine transform
    """
    # BEGIN SOLUTION batchnorm_backward
    x_hat, inv_std, gamma, has_beta, batch_stats = cache
    xp = get_array_module(dy)
    C, M = x_hat.shape
    dy2 = _channels(dy)
    dbeta, dgamma = xp.empty(C, dtype=dy.dtype), xp.empty(C, dtype=dy.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    dx = xp.empty_like(x_hat)

    def gradients(c):  # the formulas, for the channels (rows) in slice c
        dy_c, x_hat_c, dx_c = dy2[c], x_hat[c], dx[c]
        dbeta[c] = dy_c.sum(axis=1)
        dgamma[c] = xp.einsum("cm,cm->c", dy_c, x_hat_c)
        if batch_stats:
            # scale * (dy - dbeta/M - x_hat dgamma/M), built in place
            xp.multiply(x_hat_c, (-dgamma[c] / M)[:, None], out=dx_c)
            dx_c += dy_c
            dx_c -= (dbeta[c] / M)[:, None]
            dx_c *= scale[c, None]
        else:
            xp.multiply(dy_c, scale[c, None], out=dx_c)

    parallel_rows(gradients, C, M * x_hat.itemsize, x_hat.size, xp)  # as the forward
    dx = _unchannels(dx, dy.shape)
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)
    # END SOLUTION
