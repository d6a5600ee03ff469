r"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

With gradient :math:`g_t`, parameters :math:`\theta`, momentum :math:`\mu`, dampening
:math:`\tau` and weight decay :math:`\lambda` (PyTorch's formulation, which puts the learning
rate outside the buffer, so changing the lr does not rescale the accumulated velocity):

.. math::
    g_t \leftarrow g_t + \lambda\theta_{t-1}, \qquad
    b_t = \mu b_{t-1} + (1-\tau) g_t \quad (b_1 = g_1), \qquad
    \theta_t = \theta_{t-1} - \eta\,(g_t + \mu b_t \text{ if Nesterov else } b_t)
"""
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD as ``torch.optim.SGD``: the same update, the same buffer name (``momentum_buffer``).

    Parameters
    ----------
    params : iterable of Parameter or of param-group dicts
    lr : float, the learning rate :math:`\eta`
    momentum : float, :math:`\mu` (0 disables the buffer)
    dampening : float, :math:`\tau`
    weight_decay : float, :math:`\lambda` (L2 penalty added to the gradient)
    nesterov : bool, Nesterov momentum (needs momentum > 0 and dampening 0)
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: nesterov=True needs momentum > 0 and dampening 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, p, grad, state, group):
        # BEGIN SOLUTION sgd_update
        lr, momentum = group["lr"], group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # The first step starts the buffer at the gradient itself (no dampening), as torch.
                buf = state["momentum_buffer"] = grad.astype(p.data.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= lr * grad
        # END SOLUTION
