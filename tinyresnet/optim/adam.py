r"""Adam and AdamW: adaptive moment estimation (Kingma & Ba, 2015; Loshchilov & Hutter, 2019).

With gradient :math:`g_t` and step count :math:`t`:

.. math::
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
    \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
        \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

Adam adds the L2 term :math:`\lambda\theta` to :math:`g_t`; AdamW instead decays the weights
directly, :math:`\theta \leftarrow \theta(1-\eta\lambda)`, before the update ("decoupled"
weight decay), so the decay is not rescaled by :math:`1/\sqrt{v_t}`.  The bias corrections are
written as in ``torch.optim.Adam`` (epsilon added after dividing by :math:`\sqrt{1-\beta_2^t}`).
"""
from ..backend import get_array_module
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam as ``torch.optim.Adam`` (buffers ``exp_avg``, ``exp_avg_sq``, ``step``).

    Parameters
    ----------
    params : iterable of Parameter or of param-group dicts
    lr : float, :math:`\eta`
    betas : (float, float), :math:`(\beta_1, \beta_2)`, decay rates of the two moments
    eps : float, :math:`\epsilon`
    weight_decay : float, :math:`\lambda`
    """

    _decoupled_weight_decay = False
    _torch_switches = {"decoupled_weight_decay": False}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        name = type(self).__name__
        group["betas"] = tuple(group["betas"])
        if len(group["betas"]) != 2 or not all(0 <= b < 1 for b in group["betas"]):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {group['betas']}")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {group['eps']}")

    def _update(self, p, grad, state, group):
        # BEGIN SOLUTION adam_update
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if "step" not in state:
            xp = get_array_module(p.data)
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        if weight_decay != 0:
            if self._decoupled_weight_decay:
                p.data *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.data
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / (1 - beta1**step)
        denom = exp_avg_sq**0.5 / bias_correction2_sqrt + group["eps"]
        p.data -= step_size * (exp_avg / denom)
        # END SOLUTION


class AdamW(Adam):
    """AdamW as ``torch.optim.AdamW``: Adam with decoupled weight decay (default 1e-2)."""

    _decoupled_weight_decay = True
    _torch_switches = {"decoupled_weight_decay": True}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
