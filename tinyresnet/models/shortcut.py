r"""The two shortcuts of a block whose stride or width changes (He et al. 2015, sec. 3.3).

Option A, ``ShortcutA``: the identity made to fit, with no parameters.  Space is subsampled by
taking every ``stride``-th pixel and the new channels are zeros:

.. math::  s(x) = \mathrm{pad}_C(x[:, :, ::s, ::s]), \qquad
           \frac{\partial L}{\partial x}[:, :, ::s, ::s] = \frac{\partial L}{\partial s}[:, c_0 : c_0 + C]

(zero elsewhere: the skipped pixels and the padded channels carry no gradient back).
The padding is split evenly, ``(C_out - C_in) // 2`` zero channels before and the rest after, as
in the widely used CIFAR re-implementations whose parameter counts (0.27M for ResNet-20) are
quoted.

Option B, ``projection``: a strided 1x1 convolution and BN, named ``downsample`` as torchvision
does (``downsample.0.weight``, ``downsample.1.running_mean``, ...).
"""
from .. import nn
from ..backend import get_array_module
from ..functional._validate import check_array
from .block import conv1x1

__all__ = ["ShortcutA", "projection"]


class ShortcutA(nn.Module):
    """Parameter-free shortcut: subsample by ``stride``, zero-pad channels to ``out_channels``.

    Input (N, in_channels, H, W) -> output (N, out_channels, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"ShortcutA: out_channels ({out_channels}) must be at least in_channels "
                f"({in_channels}); option A only adds zero channels"
            )
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.pad_before = (out_channels - in_channels) // 2

    def forward(self, x):
        check_array(x, "ShortcutA", ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"ShortcutA: expected input with {self.in_channels} channels, "
                f"got shape {tuple(x.shape)}"
            )
        # BEGIN SOLUTION shortcut_a_forward
        xp = get_array_module(x)
        s, c0 = self.stride, self.pad_before
        sub = x[:, :, ::s, ::s]
        y = xp.zeros((x.shape[0], self.out_channels) + sub.shape[2:], dtype=x.dtype)
        y[:, c0 : c0 + self.in_channels] = sub
        self._save(x.shape)
        return y
        # END SOLUTION

    def backward(self, dy):
        # BEGIN SOLUTION shortcut_a_backward
        x_shape = self._pop_cache()
        xp = get_array_module(dy)
        s, c0 = self.stride, self.pad_before
        dx = xp.zeros(x_shape, dtype=dy.dtype)
        # Only the kept pixels and the real channels took part in the forward.
        dx[:, :, ::s, ::s] = dy[:, c0 : c0 + self.in_channels]
        return dx
        # END SOLUTION

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def projection(in_planes, out_planes, stride=1, norm_layer=None):
    """Option B shortcut / torchvision's ``downsample``: ``Sequential(conv1x1(stride), BN)``."""
    # BEGIN SOLUTION projection
    norm_layer = norm_layer or nn.BatchNorm2d
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), norm_layer(out_planes))
    # END SOLUTION
