r"""What every residual block shares: the sum of a branch and a shortcut, and its backward.

A post-activation block (He et al. 2015) computes

.. math::  \mathrm{out} = \mathrm{relu}(\mathcal{F}(x) + s(x))

with :math:`\mathcal{F}` the residual branch (conv-BN-ReLU-...-conv-BN) and :math:`s` the shortcut:
the identity, or the projection ``downsample`` (1x1 conv + BN) when the stride or the width changes.
Backward reads the sum in reverse.  An addition hands its output gradient unchanged to both operands,

.. math::  \frac{\partial L}{\partial x} = \frac{\partial L}{\partial \mathrm{out}'}
           \Big(\frac{\partial \mathcal{F}}{\partial x} + 1\Big)
           \qquad (s = \text{identity},\ \mathrm{out}' = \mathcal{F}(x) + x)

and the "+1" is why gradients reach early layers of a deep ResNet undiminished.  Backward adds
the part of dx that came through the branch to the part that came through the shortcut and keeps
neither: the gradient-flow tools (``tinyresnet.viz``) record the two parts by instrumenting
``branch_backward`` and ``shortcut_backward`` while they analyse a model.

``skip = False`` builds the *plain* twin of a block: no shortcut at all, ``out = relu(F(x))``.

The ReLU after the sum is ``self.relu``; torchvision's blocks call that same module inside the
branch too.  A module's forward caches form a stack, so the backward below, which pops the
post-sum ReLU first and the branch's afterwards, meets them in the right order.
"""
from .. import functional as F
from .. import nn

__all__ = ["conv3x3", "conv1x1", "ResidualBlock", "residual_blocks"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """3x3 convolution with padding (= dilation, so the spatial size only changes with stride)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution: mixes channels, or projects a shortcut to a new width and stride."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ResidualBlock(nn.Module):
    """Base class of the blocks: ``out = relu(branch(x) + shortcut(x))``.

    Subclasses build ``self.relu`` (the ReLU after the sum) and ``self.downsample`` (a module, or
    None for the identity) and write ``branch_forward`` / ``branch_backward``.

    Attributes
    ----------
    skip : bool
        False for the plain twin: no shortcut, ``out = relu(branch(x))``.
    """

    expansion = 1
    preact = False

    def __init__(self, skip=True):
        super().__init__()
        self.skip = bool(skip)

    def branch_forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement branch_forward")

    def branch_backward(self, d_branch):
        raise NotImplementedError(f"{type(self).__name__} does not implement branch_backward")

    def shortcut_forward(self, x):
        """s(x): the identity, or ``downsample(x)`` (projection, or option A's subsample+pad)."""
        # BEGIN SOLUTION shortcut_forward
        return x if self.downsample is None else self.downsample(x)
        # END SOLUTION

    def shortcut_backward(self, d_shortcut):
        """ds/dx^T d_shortcut: for the identity the gradient itself, the "+1" of the skip."""
        # BEGIN SOLUTION shortcut_backward
        return d_shortcut if self.downsample is None else self.downsample.backward(d_shortcut)
        # END SOLUTION

    def forward(self, x):
        # BEGIN SOLUTION block_forward
        out = self.branch_forward(x)
        if self.skip:
            out, _ = F.add_forward(out, self.shortcut_forward(x))
        return self.relu(out)
        # END SOLUTION

    def backward(self, dy):
        # BEGIN SOLUTION block_relu_backward
        return self._sum_backward(self.relu.backward(dy))
        # END SOLUTION

    def _sum_backward(self, d_sum):
        """Backward of ``branch(x) + shortcut(x)`` (or of ``branch(x)`` alone when plain)."""
        if not self.skip:
            return self.branch_backward(d_sum)
        # BEGIN SOLUTION block_backward
        # The sum's gradient goes to both operands unchanged: d(a + b)/da = d(a + b)/db = 1.
        d_branch, d_shortcut = F.add_backward(d_sum, None)
        grad_branch = self.branch_backward(d_branch)
        grad_shortcut = self.shortcut_backward(d_shortcut)
        # x fed both paths, so its gradient is the sum of what came back along each of them.
        return grad_branch + grad_shortcut
        # END SOLUTION

    def zero_init_residual(self):
        """Make the branch output zero at initialisation, so the block starts as its shortcut
        (Goyal et al. 2017): the last BN's gamma is set to 0."""
        nn.init.zeros_(self.last_bn.weight)

    def extra_repr(self):
        return "" if self.skip else "skip=False"


def residual_blocks(model):
    """Yield ``(qualified name, block)`` for every ResidualBlock of a model, input to output.

    The order is the order of definition, which in every network here is depth order:
    ``layer1.0, layer1.1, ..., layer4.2``.
    """
    for name, module in model.named_modules():
        if isinstance(module, ResidualBlock):
            yield name, module
