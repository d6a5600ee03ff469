r"""Pre-activation residual blocks (He et al. 2016, "Identity Mappings in Deep Residual Networks").

BN and ReLU move in front of each convolution and nothing follows the addition:

.. math::  x_{l+1} = x_l + \mathcal{F}(x_l), \qquad
           \mathcal{F}(x) = \mathrm{conv}(\mathrm{relu}(\mathrm{bn}(\mathrm{conv}(\mathrm{relu}(\mathrm{bn}(x))))))

so the identity path runs from any block to any later one untouched, and
:math:`\partial L/\partial x_l = \partial L/\partial x_L\,(1 + \partial/\partial x_l \sum \mathcal{F})`.
A network of these blocks has a stem without BN-ReLU and one final BN-ReLU before the pool.

Where the shortcut is a projection (stride or width change) it reads the pre-activated input
``relu1(bn1(x))``, shared with the branch, and is a bare 1x1 conv (``downsample.0``), as in the
paper's code: the input of a projection is then normalised, like every conv's.  Backward adds the
two gradients that reach the shared pre-activation and takes their sum once through ``relu1`` and
``bn1``'s own backward (with any ``norm_layer``, affine or not).
"""
from .. import functional as F
from .. import nn
from .block import ResidualBlock, conv1x1, conv3x3
from .resnet import ResNet

__all__ = [
    "PreActBasicBlock", "PreActBottleneck",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
]


class _PreActBlock(ResidualBlock):
    """out = branch(a) + shortcut, with a = relu1(bn1(x)) and shortcut = x or downsample(a).

    Subclasses build bn1, relu1, the rest of the branch and ``downsample``, and write
    ``branch_forward(a)`` / ``branch_backward`` for the branch *after* the pre-activation.
    """

    preact = True

    def _check_shortcut(self, inplanes, outplanes, stride, downsample, skip):
        if downsample is not None and not skip:
            raise ValueError(
                f"{type(self).__name__}: a plain block (skip=False) has no shortcut to downsample"
            )
        if skip and downsample is None and (stride != 1 or inplanes != outplanes):
            downsample = nn.Sequential(conv1x1(inplanes, outplanes, stride))
        return downsample

    def forward(self, x):
        a = self.relu1(self.bn1(x))
        out = self.branch_forward(a)
        if self.skip:
            shortcut = x if self.downsample is None else self.downsample(a)
            out, _ = F.add_forward(out, shortcut)
        return out

    def backward(self, dy):
        # BEGIN SOLUTION preact_block_backward
        if not self.skip:
            return self._preact_backward(self.branch_backward(dy))
        # out = branch + shortcut: both receive dy unchanged (the "+1" of the identity path).
        d_branch, d_shortcut = F.add_backward(dy, None)
        da = self.branch_backward(d_branch)
        if self.downsample is None:
            return self._preact_backward(da) + d_shortcut
        # The projection read a = relu1(bn1(x)) too: a's gradient is the sum of both uses.
        return self._preact_backward(da + self.downsample.backward(d_shortcut))
        # END SOLUTION

    def _preact_backward(self, da):
        """Backward of a = relu1(bn1(x)): dL/da -> dL/dx."""
        return self.bn1.backward(self.relu1.backward(da))

    def zero_init_residual(self):
        """Start the block as the identity: the last conv's weights are set to 0 (zeroing the
        last BN's gamma would leave its ReLU, and so gamma itself, without gradient)."""
        nn.init.zeros_(self.last_conv.weight)


class PreActBasicBlock(_PreActBlock):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the shortcut; no ReLU after the sum.

    Input (N, inplanes, H, W) -> output (N, planes, H / stride, W / stride).
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, skip=True):
        super().__init__(skip)
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"PreActBasicBlock: only groups=1 and base_width=64 are supported, got "
                f"groups={groups}, base_width={base_width}"
            )
        if dilation > 1:
            raise NotImplementedError("PreActBasicBlock: dilation > 1 is not supported")
        self.bn1 = norm_layer(inplanes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.downsample = self._check_shortcut(inplanes, planes, stride, downsample, skip)
        self.stride = stride

    @property
    def last_bn(self):
        return self.bn2

    @property
    def last_conv(self):
        return self.conv2

    def branch_forward(self, a):
        out = self.conv1(a)
        return self.conv2(self.relu2(self.bn2(out)))

    def branch_backward(self, d_branch):
        # BEGIN SOLUTION preact_basic_branch_backward
        d = self.bn2.backward(self.relu2.backward(self.conv2.backward(d_branch)))
        return self.conv1.backward(d)
        # END SOLUTION


class PreActBottleneck(_PreActBlock):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1 (x4), plus the shortcut.

    Input (N, inplanes, H, W) -> output (N, planes * 4, H / stride, W / stride); the stride sits
    on the 3x3 conv, or on the first 1x1 with ``stride_in_1x1=True``.
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, skip=True, stride_in_1x1=False):
        super().__init__(skip)
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        outplanes = planes * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = norm_layer(inplanes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn2 = norm_layer(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, dilation)
        self.bn3 = norm_layer(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv3 = conv1x1(width, outplanes)
        self.downsample = self._check_shortcut(inplanes, outplanes, stride, downsample, skip)
        self.stride = stride

    @property
    def last_bn(self):
        return self.bn3

    @property
    def last_conv(self):
        return self.conv3

    def branch_forward(self, a):
        out = self.conv1(a)
        out = self.conv2(self.relu2(self.bn2(out)))
        return self.conv3(self.relu3(self.bn3(out)))

    def branch_backward(self, d_branch):
        # BEGIN SOLUTION preact_bottleneck_branch_backward
        d = self.bn3.backward(self.relu3.backward(self.conv3.backward(d_branch)))
        d = self.bn2.backward(self.relu2.backward(self.conv2.backward(d)))
        return self.conv1.backward(d)
        # END SOLUTION


def preact_resnet18(**kwargs):
    """Pre-activation ResNet-18: PreActBasicBlock, [2, 2, 2, 2]."""
    return ResNet(PreActBasicBlock, [2, 2, 2, 2], **kwargs)


def preact_resnet34(**kwargs):
    """Pre-activation ResNet-34: PreActBasicBlock, [3, 4, 6, 3]."""
    return ResNet(PreActBasicBlock, [3, 4, 6, 3], **kwargs)


def preact_resnet50(**kwargs):
    """Pre-activation ResNet-50: PreActBottleneck, [3, 4, 6, 3]."""
    return ResNet(PreActBottleneck, [3, 4, 6, 3], **kwargs)


def preact_resnet101(**kwargs):
    """Pre-activation ResNet-101: PreActBottleneck, [3, 4, 23, 3]."""
    return ResNet(PreActBottleneck, [3, 4, 23, 3], **kwargs)


def preact_resnet152(**kwargs):
    """Pre-activation ResNet-152: PreActBottleneck, [3, 8, 36, 3]."""
    return ResNet(PreActBottleneck, [3, 8, 36, 3], **kwargs)
