r"""OneCycleLR: the 1cycle policy (Smith & Topin 2018), as ``torch.optim.lr_scheduler.OneCycleLR``.

Stepped once per batch for ``total_steps`` batches.  The lr rises from
``initial_lr = max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of the steps, then
falls to ``min_lr = initial_lr / final_div_factor``; the momentum (SGD's ``momentum``, Adam's
first beta) moves the opposite way, from ``max_momentum`` down to ``base_momentum`` and back.
With ``three_phase=True`` the lr comes back down to ``initial_lr`` symmetrically before the final
fall.  Each phase anneals from its start value a to its end value b, over its fraction p of steps:

.. math::  \text{cos: } b + \tfrac12(a - b)(1 + \cos \pi p), \qquad \text{linear: } a + (b - a)p

Phase boundaries are PyTorch's: phase 1 ends at step ``pct_start * total_steps - 1``, the last at
``total_steps - 1``.  The param groups get PyTorch's keys ``initial_lr``, ``max_lr``, ``min_lr``,
``max_momentum`` and ``base_momentum``, saved with the optimizer's state.
"""
import math

from .lr_scheduler import LRScheduler

__all__ = ["OneCycleLR"]


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start, end, pct):
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """Parameters as torch: ``max_lr`` (a number or one per param group), ``total_steps`` or
    ``epochs`` and ``steps_per_epoch``, ``pct_start``, ``anneal_strategy`` ('cos' or 'linear'),
    ``cycle_momentum``, ``base_momentum``, ``max_momentum``, ``div_factor``, ``final_div_factor``,
    ``three_phase``.  Raises ValueError past ``total_steps`` steps, as PyTorch does."""

    _hyperparameters = ("total_steps", "pct_start", "anneal_strategy", "cycle_momentum",
                        "three_phase")

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if not (isinstance(total_steps, int) and total_steps > 0):
            raise ValueError(
                f"OneCycleLR: total_steps must be a positive integer, got {total_steps!r}"
            )
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        groups = getattr(optimizer, "param_groups", [])
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(
                f"OneCycleLR: expected {len(groups)} max_lr values, got {len(max_lrs)}"
            )
        self.total_steps, self.pct_start = total_steps, pct_start
        self.anneal_strategy, self.three_phase = anneal_strategy, three_phase
        self.cycle_momentum = cycle_momentum
        for group, top in zip(groups, max_lrs):
            group["initial_lr"] = top / div_factor
            group["max_lr"] = top
            group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            if groups and "momentum" not in groups[0] and "betas" not in groups[0]:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum "
                                 "or betas; pass cycle_momentum=False")
            for group in groups:
                group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
                self._set_momentum(group, max_momentum)
        super().__init__(optimizer)

    @staticmethod
    def _set_momentum(group, value):
        if "betas" in group:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _phases(self):
        """(end step, lr start key, lr end key, momentum start key, momentum end key) per phase."""
        up = float(self.pct_start * self.total_steps) - 1
        if self.three_phase:
            return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (float(2 * self.pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                     "base_momentum", "max_momentum"),
                    (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _apply(self, epoch):
        if epoch > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {epoch} times; total_steps is {self.total_steps}"
            )
        anneal = _anneal_cos if self.anneal_strategy == "cos" else _anneal_linear
        phases = self._phases()
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr_a, lr_b, m_a, m_b) in enumerate(phases):
                if epoch <= end or i == len(phases) - 1:
                    pct = (epoch - start) / (end - start)
                    group["lr"] = anneal(group[lr_a], group[lr_b], pct)
                    if self.cycle_momentum:
                        self._set_momentum(group, anneal(group[m_a], group[m_b], pct))
                    break
                start = end
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
