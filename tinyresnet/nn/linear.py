"""Linear, Flatten and Identity modules."""
import math

import numpy as np

from .. import functional as F
from ..backend import default_dtype
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "Flatten", "Identity"]


class Linear(Module):
    """y = x w^T + b, torch.nn.Linear's shapes and default initialisation."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        dtype = dtype or default_dtype()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = init.default_bias_bound(self.weight.shape)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        b = self.bias.data if self.bias is not None else None
        y, cache = F.linear_forward(x, self.weight.data, b)
        self._save(cache)
        return y

    def backward(self, dy):
        dx, dw, db = F.linear_backward(dy, self._pop_cache())
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten every dimension from start_dim on (default 1: keep the batch)."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        y, cache = F.flatten_forward(x, self.start_dim)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.flatten_backward(dy, self._pop_cache())


class Identity(Module):
    """Returns its input; its backward returns the incoming gradient."""

    def forward(self, x):
        return x

    def backward(self, dy):
        return dy
