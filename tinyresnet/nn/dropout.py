"""Dropout module (inverted dropout; the identity in eval mode)."""
from .. import functional as F
from ..random import get_rng
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        y, cache = F.dropout_forward(x, self.p, self.training, get_rng())
        self._save(("mask", cache))
        return y

    def backward(self, dy):
        _, mask = self._pop_cache()
        return F.dropout_backward(dy, mask)

    def extra_repr(self):
        return f"p={self.p}"
