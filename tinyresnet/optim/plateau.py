"""ReduceLROnPlateau: divide the lr when a metric stops improving, as
``torch.optim.lr_scheduler.ReduceLROnPlateau``.

``scheduler.step(metric)`` once per epoch, with the validation loss (``mode="min"``) or accuracy
(``mode="max"``).  A metric improves when it beats the best so far by more than ``threshold``:
relatively, ``best * (1 - threshold)`` for "min" (``best * (1 + threshold)`` for "max"), or
absolutely, ``best - threshold``.  After more than ``patience`` epochs without an improvement,
every group's lr becomes ``max(lr * factor, min_lr)`` (unchanged when that moves it by ``eps`` or
less), and ``cooldown`` epochs follow in which bad epochs are not counted.

Unlike the closed-form schedules, the lr depends on the metrics seen, so the scheduler's state
(``best``, ``num_bad_epochs``, ``cooldown_counter``, ...) is what a resumed run needs; it is
saved under PyTorch's attribute names.
"""
import math

from .lr_scheduler import LRScheduler, _as_tuple
from .optimizer import Optimizer, _plain

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    """Parameters as torch: ``mode`` ('min' or 'max'), ``factor`` (< 1), ``patience``,
    ``threshold``, ``threshold_mode`` ('rel' or 'abs'), ``cooldown``, ``min_lr`` (a number or one
    per param group), ``eps``.  ``step(metrics)`` takes the metric (a number, or a 0-d array)."""

    _state_keys = ("factor", "min_lrs", "patience", "cooldown", "cooldown_counter", "mode",
                   "threshold", "threshold_mode", "best", "num_bad_epochs", "mode_worse", "eps",
                   "last_epoch", "_last_lr")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"ReduceLROnPlateau: expected a tinyresnet.optim optimizer, "
                f"got {type(optimizer).__name__}"
            )
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor should be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"ReduceLROnPlateau: expected {len(groups)} min_lr values, "
                             f"got {len(min_lrs)}")
        self.optimizer = optimizer
        self.factor, self.min_lrs, self.patience = factor, min_lrs, patience
        self.cooldown, self.cooldown_counter = cooldown, 0
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.eps = eps
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best, self.num_bad_epochs = self.mode_worse, 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]

    def _is_better(self, current):
        if self.mode == "min":
            bound = (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                     else self.best - self.threshold)
            return current < bound
        bound = (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                 else self.best + self.threshold)
        return current > bound

    def step(self, metrics):
        """Record one epoch's metric; reduce the lr after more than ``patience`` bad epochs."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:  # in cooldown: bad epochs do not count
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old_lr = float(group["lr"])
                new_lr = max(old_lr * self.factor, min_lr)
                if old_lr - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """PyTorch's attribute names (``best`` may be +-inf: a float, stored as such)."""
        return {k: (list(getattr(self, k)) if k in ("min_lrs", "_last_lr") else getattr(self, k))
                for k in self._state_keys}

    def load_state_dict(self, state_dict):
        if set(state_dict) != set(self._state_keys):
            raise ValueError(
                f"ReduceLROnPlateau.load_state_dict: expected keys {sorted(self._state_keys)}, "
                f"got {sorted(state_dict)}; was it saved from another scheduler?"
            )
        for key in self._state_keys:
            value = state_dict[key]
            value = list(_as_tuple(value)) if key in ("min_lrs", "_last_lr") else _plain(value)
            setattr(self, key, value)

    def __repr__(self):
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, "
                f"patience={self.patience}, best={self.best}, last_epoch={self.last_epoch})")
