"""Learning-rate schedules: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR
(warm-up), LambdaLR, SequentialLR (warm-up followed by another schedule), OneCycleLR (one_cycle.py)
and ReduceLROnPlateau (plateau.py).

Semantics follow ``torch.optim.lr_scheduler``: building a scheduler sets the optimizer's lr for
epoch 0 and records each group's ``initial_lr`` (so a second scheduler on the same optimizer
starts from the same base lr); each ``step()`` advances ``last_epoch`` by one and sets the lr for
it.  Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch or once per iteration
(the ResNet paper's CIFAR schedule divides by 10 at iterations 32k and 48k:
``MultiStepLR(opt, milestones=[32000, 48000], gamma=0.1)`` stepped every iteration).

Every schedule here is computed in closed form from ``base_lr`` and ``last_epoch`` (torch's
``_get_closed_form_lr``) rather than chained from the current lr, so a resumed run reproduces the
lr exactly and the values equal torch's up to float rounding (checked in the tests).  Unlike
torch's chained form, an lr set by hand between steps is overwritten by the next ``step()``.

``state_dict()`` is PyTorch's layout, the scheduler's attributes by name: ``last_epoch``,
``base_lrs`` and ``_last_lr`` (lists, one entry per param group) and the schedule's
hyper-parameters (``milestones`` a list; SequentialLR adds ``schedulers.<k>.<key>`` for each
child).  Numbers and lists of numbers only, so ``numpy.savez`` stores it as it is; checkpoints
written before the rename of ``last_lr`` to ``_last_lr`` load too.
"""
import math
from bisect import bisect_right

import numpy as np

from .optimizer import Optimizer, _plain

__all__ = [
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "LambdaLR", "SequentialLR",
]


class LRScheduler:
    """Base class: subclasses name their ``_hyperparameters`` and write ``_lr_at(base_lr, epoch)``.
    """

    _hyperparameters = ()

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected a tinyresnet.optim optimizer, "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def _lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def step(self):
        """Advance one epoch (or iteration) and set the optimizer's lr for it."""
        self.last_epoch += 1
        self._apply(self.last_epoch)

    def _apply(self, epoch):
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._lr_at(base_lr, epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates (one per param group) set by the latest ``step()``."""
        return list(self._last_lr)

    def state_dict(self):
        """A flat dict of numbers and lists (format: module docstring)."""
        out = {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
        }
        for key in self._hyperparameters:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, list) else value
        return out

    def load_state_dict(self, state_dict):
        """Restore the position and hyper-parameters saved by :meth:`state_dict`.

        The optimizer's lr is not touched: it is restored by the optimizer's own state dict, as in
        PyTorch.
        """
        name = type(self).__name__
        if "last_lr" in state_dict:  # the name before PyTorch's
            state_dict = {("_last_lr" if k == "last_lr" else k): v for k, v in state_dict.items()}
        expected = {"last_epoch", "base_lrs", "_last_lr", *self._hyperparameters}
        if set(state_dict) != expected:
            raise ValueError(
                f"{name}.load_state_dict: expected keys {sorted(expected)}, "
                f"got {sorted(state_dict)}; was it saved from another scheduler?"
            )
        base_lrs = list(_as_tuple(state_dict["base_lrs"]))
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: saved for {len(base_lrs)} param group(s), the optimizer "
                f"has {len(self.optimizer.param_groups)}"
            )
        for key in self._hyperparameters:
            value = _plain(state_dict[key])
            setattr(self, key, list(value) if isinstance(value, tuple) else value)
        self.last_epoch = int(_plain(state_dict["last_epoch"]))
        self.base_lrs = base_lrs
        self._last_lr = list(_as_tuple(state_dict["_last_lr"]))

    def __repr__(self):
        settings = ", ".join(f"{k}={getattr(self, k)}" for k in self._hyperparameters)
        return f"{type(self).__name__}({settings}, last_epoch={self.last_epoch})"


def _as_tuple(value):
    """A list, tuple or 1-d array as a tuple of Python numbers."""
    return tuple(np.asarray(value).reshape(-1).tolist())


class StepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every ``step_size`` epochs.

    .. math:: \eta_t = \eta_0\,\gamma^{\lfloor t / \text{step\_size} \rfloor}
    """

    _hyperparameters = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not (isinstance(step_size, (int, np.integer)) and step_size > 0):
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0\,\gamma^{\#\{m \in \text{milestones} : m \le t\}}

    A milestone listed twice counts twice, as in PyTorch.
    """

    _hyperparameters = ("milestones", "gamma")

    def __init__(self, optimizer, milestones, gamma=0.1):
        milestones = [int(m) for m in milestones]
        if milestones != sorted(milestones):
            raise ValueError(f"MultiStepLR: milestones must be increasing, got {milestones}")
        self.milestones, self.gamma = milestones, gamma
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every epoch.

    .. math:: \eta_t = \eta_0\,\gamma^t
    """

    _hyperparameters = ("gamma",)

    def __init__(self, optimizer, gamma):
        if not gamma > 0:
            raise ValueError(f"ExponentialLR: gamma must be > 0, got {gamma!r}")
        self.gamma = gamma
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base lr down to ``eta_min`` over ``T_max`` epochs (SGDR without
    restarts); past ``T_max`` the cosine continues, rising again, as in PyTorch.

    .. math:: \eta_t = \eta_{min} + \tfrac12(\eta_0-\eta_{min})(1+\cos(\pi t/T_{max}))
    """

    _hyperparameters = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        cosine = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cosine / 2


class LinearLR(LRScheduler):
    r"""Scale the lr linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps,
    then hold it: the usual linear warm-up is ``LinearLR(opt, start_factor=0.1, total_iters=5)``.

    .. math:: \eta_t = \eta_0\,(s + (e - s)\min(t, T)/T)
    """

    _hyperparameters = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if not (isinstance(total_iters, (int, np.integer)) and total_iters > 0):
            raise ValueError(
                f"LinearLR: total_iters must be a positive integer, got {total_iters!r}"
            )
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        progress = min(self.total_iters, epoch) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch), for any schedule written as a function.

    The function is not part of the state dict (it is code, not data): build the scheduler with
    the same function before loading.
    """

    def __init__(self, optimizer, lr_lambda):
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be callable, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def _lr_at(self, base_lr, epoch):
        return base_lr * self.lr_lambda(epoch)


class SequentialLR(LRScheduler):
    """Run ``schedulers[k]`` from ``milestones[k-1]`` on, each counting its epochs from 0 there.

    Warm-up then cosine over E epochs::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=E - 5)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones):
        schedulers, milestones = list(schedulers), [int(m) for m in milestones]
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler, got none")
        for k, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler) or scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR: scheduler {k} must be a scheduler of the same optimizer"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"SequentialLR: expected {len(schedulers) - 1} milestone(s) for "
                f"{len(schedulers)} schedulers, got {len(milestones)}"
            )
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {milestones}")
        self._schedulers, self.milestones = schedulers, milestones
        super().__init__(optimizer)

    def _apply(self, epoch):
        k = bisect_right(self.milestones, epoch)
        start = self.milestones[k - 1] if k > 0 else 0
        scheduler = self._schedulers[k]
        scheduler.last_epoch = epoch - start
        scheduler._apply(scheduler.last_epoch)
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        out = {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
            "milestones": list(self.milestones),
        }
        for k, scheduler in enumerate(self._schedulers):
            out.update({f"schedulers.{k}.{key}": v for key, v in scheduler.state_dict().items()})
        return out

    def load_state_dict(self, state_dict):
        children = [{} for _ in self._schedulers]
        own = {}
        for key, value in state_dict.items():
            if key.startswith("schedulers."):
                _, k, field = key.split(".", 2)
                if not k.isdigit() or int(k) >= len(children):
                    raise ValueError(
                        f"SequentialLR.load_state_dict: key {key!r} names a scheduler this "
                        f"SequentialLR (of {len(children)}) does not have"
                    )
                children[int(k)][field] = value
            else:
                own[key] = value
        for scheduler, child_state in zip(self._schedulers, children):
            scheduler.load_state_dict(child_state)
        milestones = list(_as_tuple(own.pop("milestones", ())))
        if len(milestones) != len(self.milestones):
            raise ValueError(
                f"SequentialLR.load_state_dict: saved with {len(milestones)} milestone(s), "
                f"this one has {len(self.milestones)}"
            )
        self.milestones = [int(m) for m in milestones]
        super().load_state_dict(own)


# The two schedules with files of their own, importable from here as from torch's lr_scheduler
# (imported last: they subclass LRScheduler).
from .one_cycle import OneCycleLR  # noqa: E402
from .plateau import ReduceLROnPlateau  # noqa: E402

__all__ += ["OneCycleLR", "ReduceLROnPlateau"]
