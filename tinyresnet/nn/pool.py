"""Pooling modules: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (output 1x1)."""
from .. import functional as F
from ..functional._validate import pair
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class MaxPool2d(Module):
    """torch.nn.MaxPool2d (floor mode only): -inf padding, gradient to the first maximum."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        if ceil_mode:
            raise NotImplementedError("MaxPool2d: ceil_mode=True is not supported (floor mode only)")
        self.kernel_size, self.padding, self.dilation = kernel_size, padding, dilation
        self.stride = kernel_size if stride is None else stride

    def forward(self, x):
        y, cache = F.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding, self.dilation)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.maxpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}")


class AvgPool2d(Module):
    """torch.nn.AvgPool2d (floor mode only)."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride
        self.count_include_pad = count_include_pad

    def forward(self, x):
        y, cache = F.avgpool2d_forward(
            x, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )
        self._save(cache)
        return y

    def backward(self, dy):
        return F.avgpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d for output size 1x1 (the global average pool of a ResNet)."""

    def __init__(self, output_size=(1, 1)):
        super().__init__()
        self.output_size = pair(output_size, "output_size", "AdaptiveAvgPool2d")
        if self.output_size != (1, 1):
            raise NotImplementedError(
                f"AdaptiveAvgPool2d: only output_size (1, 1) is supported, got {output_size}"
            )

    def forward(self, x):
        y, cache = F.global_avgpool2d_forward(x)
        self._save(cache)
        return y

    def backward(self, dy):
        return F.global_avgpool2d_backward(dy, self._pop_cache())

    def extra_repr(self):
        return f"output_size={self.output_size}"
