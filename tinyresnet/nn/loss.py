"""CrossEntropyLoss: softmax cross-entropy over logits, with PyTorch's reduction and
ignore_index."""
import numpy as np

from .. import functional as F
from ..backend import get_array_module
from .module import Module

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Module):
    """``loss = loss_fn(logits, labels)`` returns the loss: a Python float for NumPy logits, a 0-d
    CuPy array for logits on the GPU (reading it, ``float(loss)``, waits for the device, so a
    training step leaves it on the device until it is logged), an array (N,) for
    ``reduction="none"``; ``loss_fn.backward()`` returns d(loss)/d(logits), of the logits' shape
    and dtype.

    label_smoothing : float in [0, 1]
    reduction : "mean" (default; over the samples not ignored), "sum" or "none"
    ignore_index : samples with this label cost nothing and get no gradient (default -100)
    """

    def __init__(self, label_smoothing=0.0, reduction="mean", ignore_index=-100):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
            )
        self.label_smoothing, self.reduction, self.ignore_index = (
            label_smoothing, reduction, ignore_index
        )

    def forward(self, logits, labels):
        loss, cache = F.cross_entropy_forward(logits, labels, self.label_smoothing,
                                              self.reduction, self.ignore_index)
        self._save(cache)
        if self.reduction == "none" or get_array_module(loss) is not np:
            return loss
        return float(loss)

    def backward(self, dloss=1.0):
        """dloss: a number, or for reduction="none" a number or an array (N,)."""
        return F.cross_entropy_backward(dloss, self._pop_cache())

    def extra_repr(self):
        settings = []
        if self.label_smoothing:
            settings.append(f"label_smoothing={self.label_smoothing}")
        if self.reduction != "mean":
            settings.append(f"reduction={self.reduction!r}")
        if self.ignore_index != -100:
            settings.append(f"ignore_index={self.ignore_index}")
        return ", ".join(settings)
