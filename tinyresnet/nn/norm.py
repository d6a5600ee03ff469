"""BatchNorm2d: batch normalization with learnable scale/shift and running statistics."""
import numpy as np

from .. import functional as F
from ..backend import default_dtype
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
    """torch.nn.BatchNorm2d: weight (gamma) = 1, bias (beta) = 0; buffers running_mean = 0,
    running_var = 1, num_batches_tracked = 0.  ``momentum=None`` means a cumulative average
    (factor 1 / num_batches_tracked), as in PyTorch."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        dtype = dtype or default_dtype()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def forward(self, x):
        momentum = self.momentum
        tracking = self.training and self.track_running_stats
        if tracking and momentum is None:
            momentum = 1.0 / float(self.num_batches_tracked + 1)
        y, cache = F.batchnorm2d_forward(
            x,
            self.weight.data if self.affine else None,
            self.bias.data if self.affine else None,
            self.running_mean if self.track_running_stats else None,
            self.running_var if self.track_running_stats else None,
            self.training,
            momentum if momentum is not None else 0.0,
            self.eps,
        )
        if tracking:  # counted once the batch is accepted: a rejected input changes no state
            self.num_batches_tracked += 1  # in place: an array taken from state_dict() stays live
        self._save(cache)
        return y

    def backward(self, dy):
        dx, dgamma, dbeta = F.batchnorm2d_backward(dy, self._pop_cache())
        if self.affine:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")
