"""Conv2d: a learnable convolution over the functional conv2d pair."""
import math

import numpy as np

from .. import functional as F
from ..backend import default_dtype
from ..functional._validate import check_window_args, pair
from ..functional.conv_padding import resolve_padding
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv2d", "skip_input_grad"]


class Conv2d(Module):
    """2-D convolution, torch.nn.Conv2d's arguments and initialisation.

    weight (out_channels, in_channels / groups, kh, kw), bias (out_channels,) or None.  Initialised
    with kaiming_uniform_(a=sqrt(5)) and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch does.
    ``padding`` is an int, a pair, or "same" / "valid" (stride 1; an even kernel gets its extra
    padding on the bottom/right, as PyTorch).  ``groups`` splits the channels into that many
    independent convolutions (both channel counts must divide by it; ValueError otherwise).
    Input (N, in_channels, H, W) -> output (N, out_channels, Ho, Wo).

    ``input_grad`` (True): False makes backward skip dL/dx and return None, as PyTorch skips
    grad_input for an input that does not require a gradient; ``skip_input_grad(model)`` sets
    it on a network's first convolution, whose input is the data.
    """

    input_grad = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=None):
        super().__init__()
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"Conv2d: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.kernel_size, self.stride, _, self.dilation = check_window_args(
            kernel_size, stride, 0 if isinstance(padding, str) else padding, dilation, "Conv2d"
        )
        if isinstance(padding, str):
            resolve_padding(padding, self.kernel_size, self.stride, self.dilation, "Conv2d")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", "Conv2d")
        dtype = dtype or default_dtype()
        self.weight = Parameter(np.empty((out_channels, in_channels // self.groups)
                                         + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = init.default_bias_bound(self.weight.shape)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        b = self.bias.data if self.bias is not None else None
        # groups only when grouped: an ungrouped layer runs on any conv2d_forward(x, w, b,
        # stride, padding, dilation), an assignment's or a mutation's included
        options = {"groups": self.groups} if self.groups != 1 else {}
        y, cache = F.conv2d_forward(x, self.weight.data, b, self.stride, self.padding,
                                    self.dilation, **options)
        self._save(cache)
        return y

    def backward(self, dy):
        if self.input_grad:
            dx, dw, db = F.conv2d_backward(dy, self._pop_cache())
        else:
            dx, dw, db = F.conv2d_backward(dy, self._pop_cache(), input_grad=False)
        self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if not self.input_grad:
            s += ", input_grad=False"
        return s


def skip_input_grad(model, skip=True):
    """Make the network's first convolution (the first Conv2d in ``model.modules()`` order) skip
    the gradient of its input, the data (``skip=False`` computes it again); returns the previous
    setting, or None when the model has no Conv2d.

    A training step never needs dL/d(data), and PyTorch does not compute it either (the input
    does not require a gradient).  ``model.backward`` then returns None.  For a stem such as
    ResNet's 7x7/2 3->64 convolution this saves the column gradient and its col2im, about half of
    the layer's backward.  Meant for networks whose first convolution alone reads the data, as
    every model in ``tinyresnet.models``.
    """
    for m in model.modules():
        if isinstance(m, Conv2d):
            previous, m.input_grad = not m.input_grad, not skip
            return previous
    return None
