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

__all__ = ["batchnorm2d_forward", "batchnorm2d_backward"]

_AXES = (0, 2, 3)


def _per_channel(v):
    return v.reshape(1, -1, 1, 1)


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
    check_array(x, "batchnorm2d", ndim=4)
    check_same_dtype(
        "batchnorm2d", input=x, weight=gamma, bias=beta,
        running_mean=running_mean, running_var=running_var,
    )
    xp = get_array_module(x)
    C = x.shape[1]
    for name, v in (("weight", gamma), ("bias", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is not None and tuple(v.shape) != (C,):
            raise ValueError(
                f"batchnorm2d: expected input of shape (N, {v.size}, H, W) to match {name} of "
                f"shape {tuple(v.shape)}, got {tuple(x.shape)}"
            )
    # BEGIN SOLUTION batchnorm_forward
    M = x.size // C
    if training or running_mean is None:
        if M < 2 and training:
            raise ValueError(
                f"batchnorm2d: expected more than 1 value per channel when training, "
                f"got input of shape {tuple(x.shape)}"
            )
        mean = x.mean(axis=_AXES)
        centered = x - _per_channel(mean)
        var = (centered * centered).mean(axis=_AXES)
        if training and running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += (momentum * M / (M - 1)) * var
    else:
        mean, var = running_mean, running_var
        centered = x - _per_channel(mean)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat = centered * _per_channel(inv_std)
    y = x_hat * _per_channel(gamma) if gamma is not None else x_hat.copy()
    if beta is not None:
        y += _per_channel(beta)
    batch_stats = training or running_mean is None
    return y, (x_hat, inv_std, gamma, beta is not None, batch_stats)
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
    M = dy.size // dy.shape[1]
    dbeta = dy.sum(axis=_AXES)
    dgamma = (dy * x_hat).sum(axis=_AXES)
    scale = inv_std if gamma is None else gamma * inv_std
    if batch_stats:
        dx = (dy - _per_channel(dbeta / M) - x_hat * _per_channel(dgamma / M)) * _per_channel(scale)
    else:
        dx = dy * _per_channel(scale)
    return dx, (dgamma if gamma is not None else None), (dbeta if has_beta else None)
    # END SOLUTION
