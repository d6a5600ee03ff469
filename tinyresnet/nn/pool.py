"""Pooling modules: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d."""
import numpy as np

from .. import functional as F
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class MaxPool2d(Module):
    """torch.nn.MaxPool2d: -inf padding, gradient to the first maximum; ``ceil_mode`` rounds the
    output size up with PyTorch's rule (a window may not start in the right padding)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = kernel_size if stride is None else stride
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        # ceil_mode only when set: floor mode runs on any maxpool2d_forward(x, kernel_size,
        # stride, padding, dilation), an assignment's included
        options = {"ceil_mode": True} if self.ceil_mode else {}
        y, cache = F.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                       self.dilation, **options)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.maxpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """torch.nn.AvgPool2d, with ``ceil_mode`` and ``count_include_pad`` as PyTorch."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), count_include_pad

    def forward(self, x):
        options = {"ceil_mode": True} if self.ceil_mode else {}
        y, cache = F.avgpool2d_forward(
            x, self.kernel_size, self.stride, self.padding, self.count_include_pad, **options
        )
        self._save(cache)
        return y

    def backward(self, dy):
        return F.avgpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")


def _output_pair(output_size, layer):
    """(Ho, Wo) from an int or a pair; None keeps that axis's size, as in PyTorch."""
    pair = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(pair) != 2 or not all(s is None or (isinstance(s, (int, np.integer)) and s >= 1)
                                 for s in pair):
        raise ValueError(
            f"{layer}: output_size must be a positive int, a pair of them, or None for an axis "
            f"to keep, got {output_size!r}"
        )
    return pair


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d: any output size (an int, a pair, None keeps an axis), windows
    [floor(i*H/Ho), ceil((i+1)*H/Ho)); 1x1 (a ResNet's global pool) takes the plain mean."""

    def __init__(self, output_size=(1, 1)):
        super().__init__()
        self.output_size = _output_pair(output_size, "AdaptiveAvgPool2d")

    def forward(self, x):
        if self.output_size == (1, 1):
            y, cache = F.global_avgpool2d_forward(x)
            self._save((True, cache))
        else:
            y, cache = F.adaptive_avgpool2d_forward(x, self.output_size)
            self._save((False, cache))
        return y

    def backward(self, dy):
        is_global, cache = self._pop_cache()
        if is_global:
            return F.global_avgpool2d_backward(dy, cache)
        return F.adaptive_avgpool2d_backward(dy, cache)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """torch.nn.AdaptiveMaxPool2d (return_indices=False): PyTorch's windows, gradient to each
    window's first maximum."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _output_pair(output_size, "AdaptiveMaxPool2d")

    def forward(self, x):
        y, cache = F.adaptive_maxpool2d_forward(x, self.output_size)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.adaptive_maxpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return f"output_size={self.output_size}"
