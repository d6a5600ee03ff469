"""CrossEntropyLoss: softmax cross-entropy over logits, mean-reduced."""
from .. import functional as F
from .module import Module

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Module):
    """``loss = loss_fn(logits, labels)`` returns a Python float; ``loss_fn.backward()`` returns
    d(mean loss)/d(logits), of the logits' shape and dtype."""

    def __init__(self, label_smoothing=0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits, labels):
        loss, cache = F.softmax_cross_entropy_forward(logits, labels, self.label_smoothing)
        self._save(cache)
        return float(loss)

    def backward(self, dloss=1.0):
        return F.softmax_cross_entropy_backward(dloss, self._pop_cache())

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
