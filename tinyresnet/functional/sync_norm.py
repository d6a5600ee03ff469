r"""Synchronized batch normalization: the statistics of the global batch, split over P ranks.

Shapes: on rank r, x and y are (N_r, C, H, W); gamma, beta, running_mean, running_var (C,).
M_r = N_r H W values per channel on rank r, M = sum_r M_r in the global batch.

Forward.  Two all-reduces of per-channel sums give each rank the global statistics,

.. math::
    \mu = \frac1M \textstyle\sum_r \sum_{i \in r} x_i \quad (\text{with } M = \sum_r M_r),
    \qquad \sigma^2 = \frac1M \textstyle\sum_r \sum_{i \in r} (x_i - \mu)^2,

then every rank normalizes its own shard, ``x_hat = (x - mu) / sqrt(sigma^2 + eps)``,
``y = gamma x_hat + beta``, as one process normalizes the whole batch.  The running variance is
stored unbiased with the global count, ``sigma^2 M / (M - 1)``, as PyTorch's SyncBatchNorm does.
Why not one all-reduce of the sums of x and of x^2, with sigma^2 = mean(x^2) - mu^2?  That
difference cancels catastrophically for a channel whose |mu| is large against sigma: in float32
it changed a ResNet-20's parameters by a few percent after one epoch of the digits, where
summing squared deviations, as one process does, agrees to 1e-6.  (PyTorch all-gathers each
rank's mean and variance and combines them instead.)  The partial sums travel in float64.

Backward.  Let L be the sum of every rank's loss.  y_i depends on x_j of other ranks only through
mu and sigma, so the compact batch-norm gradient (``functional.norm``) holds with its two sums
taken over the global batch:

.. math::
    \frac{\partial L}{\partial x_i} = \frac{\gamma}{M\sqrt{\sigma^2+\epsilon}}
        \Bigl( M\,dy_i - \textstyle\sum_{\text{all}} dy - \hat x_i \sum_{\text{all}} dy\,\hat x
        \Bigr)

(from d mu/dx_j = 1/M and d sigma/dx_j = x_hat_j / (M sigma) for every j of every rank).  So the
backward is one all-reduce of the 2C per-channel sums ``sum dy`` and ``sum dy x_hat``.  The
parameter gradients returned are this rank's parts, ``dgamma_r = sum_{i in r} dy x_hat`` and
``dbeta_r = sum_{i in r} dy``: the gradient all-reduce of data-parallel training adds them up.

``comm`` is an mpi4py communicator (anything with ``Allreduce(send, receive)`` summing NumPy
arrays).  With one rank this is ``batchnorm2d`` computed from sums.
"""
import numpy as np

from ..backend import get_array_module, to_numpy
from .norm import _channels, _check_args, _unchannels

__all__ = ["sync_batchnorm2d_forward", "sync_batchnorm2d_backward"]


def _allreduce_sum(comm, local):
    """Sum a small float64 host array over the ranks."""
    total = np.empty_like(local)
    comm.Allreduce(local, total)
    return total


def sync_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, momentum, eps, comm):
    """Batch-normalize x with the per-channel statistics of the batch over every rank of ``comm``
    (training mode; in evaluation use ``batchnorm2d_forward`` with the running statistics).

    Parameters
    ----------
    x : array (N_r, C, H, W), this rank's shard
    gamma, beta : array (C,), or None for no affine transform
    running_mean, running_var : array (C,) or None; updated in place with the global statistics
    momentum : weight of the new batch statistic in the running average
    eps : added to the variance
    comm : the communicator of the ranks sharing the batch

    Returns
    -------
    y : array (N_r, C, H, W)
    cache : for ``sync_batchnorm2d_backward``

    Raises ValueError for a non-4-D input, mismatched channel counts or dtypes, or a global batch
    with fewer than two values per channel.
    """
    _check_args("sync_batchnorm2d", x, gamma, beta, running_mean, running_var)
    xp = get_array_module(x)
    C = x.shape[1]
    x2 = _channels(x)  # (C, M_r)
    local = np.empty(C + 1)
    local[:C] = to_numpy(x2.sum(axis=1))
    local[C] = x2.shape[1]
    total = _allreduce_sum(comm, local)
    M = int(round(total[C]))
    if M < 2:
        raise ValueError(
            f"sync_batchnorm2d: expected more than 1 value per channel in the global batch, got "
            f"{M} (input of shape {tuple(x.shape)} on this rank)"
        )
    mean = xp.asarray(total[:C] / M, dtype=x.dtype)
    x_hat = x2 - mean[:, None]  # centred now, scaled in place below
    squares = to_numpy(xp.einsum("cm,cm->c", x_hat, x_hat)).astype(np.float64)
    var64 = _allreduce_sum(comm, squares) / M
    var = xp.asarray(var64, dtype=x.dtype)
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += xp.asarray(momentum * M / (M - 1) * var64, dtype=x.dtype)
    inv_std = 1 / xp.sqrt(var + eps)
    x_hat *= inv_std[:, None]
    y = x_hat * gamma[:, None] if gamma is not None else x_hat.copy()
    if beta is not None:
        y += beta[:, None]
    return _unchannels(y, x.shape), (x_hat, inv_std, gamma, beta is not None, M, comm)


def sync_batchnorm2d_backward(dy, cache):
    """Gradients of synchronized batch normalization (see the module docstring).

    Returns
    -------
    dx : array (N_r, C, H, W), the gradient of the summed loss of every rank
    dgamma, dbeta : array (C,), this rank's parts (None without the affine transform)
    """
    x_hat, inv_std, gamma, has_beta, M, comm = cache
    xp = get_array_module(dy)
    C = x_hat.shape[0]
    dy2 = _channels(dy)
    dbeta = dy2.sum(axis=1)
    dgamma = xp.einsum("cm,cm->c", dy2, x_hat)
    local = np.concatenate([to_numpy(dbeta), to_numpy(dgamma)]).astype(np.float64)
    total = _allreduce_sum(comm, local)
    sum_dy = xp.asarray(total[:C], dtype=dy.dtype)
    sum_dy_x_hat = xp.asarray(total[C:], dtype=dy.dtype)
    scale = inv_std if gamma is None else gamma * inv_std
    dx = x_hat * (-sum_dy_x_hat / M)[:, None]
    dx += dy2
    dx -= (sum_dy / M)[:, None]
    dx *= scale[:, None]
    return (_unchannels(dx, dy.shape), (dgamma if gamma is not None else None),
            (dbeta if has_beta else None))
