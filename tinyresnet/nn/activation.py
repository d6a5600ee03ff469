"""ReLU module."""
from .. import functional as F
from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """y = max(x, 0).  ``inplace`` is accepted for torchvision compatibility and ignored: the
    input is never overwritten, since its mask is needed for backward."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        y, cache = F.relu_forward(x)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.relu_backward(dy, self._pop_cache())

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""
