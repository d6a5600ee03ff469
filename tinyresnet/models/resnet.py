r"""The ImageNet ResNets (He et al. 2015), written to read like torchvision's ``resnet.py``.

Module names, shapes and order are torchvision's, so ``state_dict`` keys map one to one
("layer1.0.conv1.weight", "layer2.0.downsample.1.running_var", ...) and torchvision weights load
unchanged.  Every module has a hand-written backward; a block's backward splits its gradient
between the residual branch and the shortcut (see ``block.py``).

| depth | block, layers            | parameters | multiply-adds at 224x224            |
|-------|--------------------------|------------|-------------------------------------|
| 18    | Basic, [2, 2, 2, 2]      | 11,689,512 | 1.81 G                              |
| 34    | Basic, [3, 4, 6, 3]      | 21,797,672 | 3.66 G                              |
| 50    | Bottleneck, [3, 4, 6, 3] | 25,557,032 | 4.09 G (3.86 G with stride in 1x1)  |
| 101   | Bottleneck, [3, 4, 23, 3]| 44,549,160 | 7.80 G (7.57 G)                     |
| 152   | Bottleneck, [3, 8, 36, 3]| 60,192,808 | 11.51 G (11.28 G)                   |

The same Bottleneck builds the rest of torchvision's family: Wide ResNets (Zagoruyko & Komodakis
2016) double its inner width; ResNeXts (Xie et al. 2017) make its 3x3 convolution grouped,
``groups`` paths ("cardinality") of ``width_per_group`` channels per 64 planes.

| model            | layers         | groups x width | parameters  | multiply-adds at 224x224 |
|------------------|----------------|----------------|-------------|--------------------------|
| wide_resnet50_2  | [3, 4, 6, 3]   | 1 x 128        | 68,883,240  | 11.40 G                  |
| wide_resnet101_2 | [3, 4, 23, 3]  | 1 x 128        | 126,886,696 | 22.75 G                  |
| resnext50_32x4d  | [3, 4, 6, 3]   | 32 x 4         | 25,028,904  | 4.23 G                   |
| resnext101_32x8d | [3, 4, 23, 3]  | 32 x 8         | 88,791,336  | 16.41 G                  |
| resnext101_64x4d | [3, 4, 23, 3]  | 64 x 4         | 83,455,272  | 15.46 G                  |

Every count and MAC figure above is ``summary``'s and equals torchvision's (tests/models).

As in torchvision, a block has one ``relu`` module, called inside the branch and again after the
sum (a module's forward caches form a stack, so its backward meets them in reverse order).
Differences from torchvision, none of which changes a parameter: a block builds its own projection
shortcut when it needs one;
``skip=False`` builds the plain twin; ``stride_in_1x1=True`` puts a bottleneck's stride on its
first 1x1 convolution, as in the 2015 paper (torchvision, "ResNet v1.5", puts it on the 3x3).
"""
from .. import nn
from .block import ResidualBlock, conv1x1, conv3x3
from .features import FeatureNetwork
from .shortcut import projection

__all__ = [
    "BasicBlock", "Bottleneck", "ResNet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "plain_resnet18", "plain_resnet34", "plain_resnet50", "plain_resnet101", "plain_resnet152",
]


def _needs_projection(inplanes, outplanes, stride, downsample, skip):
    """A shortcut must be a projection when the block changes the stride or the width."""
    return skip and downsample is None and (stride != 1 or inplanes != outplanes)


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    Input (N, inplanes, H, W) -> output (N, planes, H / stride, W / stride).  When the stride is
    not 1 or inplanes != planes and no ``downsample`` is given, the shortcut is the projection
    ``downsample = Sequential(conv1x1(inplanes, planes, stride), BatchNorm2d(planes))``.
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, skip=True):
        super().__init__(skip)
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError(
                f"BasicBlock: only groups=1 and base_width=64 are supported, got groups={groups}, "
                f"base_width={base_width}"
            )
        if dilation > 1:
            raise NotImplementedError("BasicBlock: dilation > 1 is not supported (torchvision too)")
        if downsample is not None and not skip:
            raise ValueError("BasicBlock: a plain block (skip=False) has no shortcut to downsample")
        if _needs_projection(inplanes, planes, stride, downsample, skip):
            downsample = projection(inplanes, planes, stride, norm_layer)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    @property
    def last_bn(self):
        return self.bn2

    def branch_forward(self, x):
        # BEGIN SOLUTION basic_branch_forward
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        return self.bn2(out)
        # END SOLUTION

    def branch_backward(self, d_branch):
        # BEGIN SOLUTION basic_branch_backward
        d = self.bn2.backward(d_branch)
        d = self.conv2.backward(d)
        d = self.relu.backward(d)
        d = self.bn1.backward(d)
        return self.conv1.backward(d)
        # END SOLUTION


class Bottleneck(ResidualBlock):
    """1x1 (reduce) - 3x3 - 1x1 (expand by 4): out = relu(bn3(conv3(...)) + shortcut(x)).

    Input (N, inplanes, H, W) -> output (N, planes * 4, H / stride, W / stride); the inner width
    is ``planes * base_width / 64 * groups``.  The stride sits on the 3x3 conv (torchvision) or,
    with ``stride_in_1x1=True``, on the first 1x1 conv (the 2015 paper; fewer multiply-adds,
    since the 3x3 then runs at the lower resolution, and slightly lower accuracy).
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None, skip=True, stride_in_1x1=False):
        super().__init__(skip)
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        outplanes = planes * self.expansion
        if downsample is not None and not skip:
            raise ValueError("Bottleneck: a plain block (skip=False) has no shortcut to downsample")
        if _needs_projection(inplanes, outplanes, stride, downsample, skip):
            downsample = projection(inplanes, outplanes, stride, norm_layer)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(inplanes, width, stride_1x1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride_3x3, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, outplanes)
        self.bn3 = norm_layer(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    @property
    def last_bn(self):
        return self.bn3

    def branch_forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def branch_backward(self, d_branch):
        # BEGIN SOLUTION bottleneck_branch_backward
        d = self.conv3.backward(self.bn3.backward(d_branch))
        d = self.conv2.backward(self.bn2.backward(self.relu.backward(d)))
        return self.conv1.backward(self.bn1.backward(self.relu.backward(d)))
        # END SOLUTION


class ResNet(FeatureNetwork):
    """torchvision's ResNet: stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages of blocks
    (64, 128, 256, 512 planes), global average pool, fc.

    Parameters
    ----------
    block : BasicBlock, Bottleneck, or a pre-activation block (preact.py)
    layers : four ints, the number of blocks per stage
    num_classes : size of the fc output
    zero_init_residual : start every block as its shortcut (branch output zero)
    groups, width_per_group : the bottleneck's 3x3 convolution has ``groups`` groups and inner
        width ``planes * width_per_group / 64 * groups`` (128 for the wide ResNets; ResNeXt
        32x4d is groups=32, width_per_group=4)
    replace_stride_with_dilation : three bools for layer2..layer4: keep the resolution and dilate
        instead (output stride 8 or 16 for segmentation backbones)
    norm_layer : the normalisation class (default BatchNorm2d)
    in_channels : channels of the input image
    skip : False builds the plain twin (no shortcuts, no projections)
    stride_in_1x1 : Bottleneck only; put the stride on the first 1x1 conv (2015 paper)

    Input (N, in_channels, H, W) -> logits (N, num_classes).  Pre-activation blocks (a ``preact``
    class attribute) get a stem without BN-ReLU and a final BN-ReLU before the pool (He et al.
    2016), named ``final_bn`` and ``final_relu``.
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, replace_stride_with_dilation=None, norm_layer=None,
                 in_channels=3, skip=True, stride_in_1x1=False):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self._norm_layer = norm_layer
        if len(layers) != 4:
            raise ValueError(f"ResNet: layers must list 4 stage depths, got {layers!r}")
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(
                "ResNet: replace_stride_with_dilation should be None or a 3-element tuple, "
                f"got {replace_stride_with_dilation!r}"
            )
        self._block_kwargs = {"skip": skip}
        if stride_in_1x1:
            if block.expansion == 1:
                raise ValueError(
                    f"ResNet: stride_in_1x1 applies to bottleneck blocks, not {block.__name__}"
                )
            self._block_kwargs["stride_in_1x1"] = True
        self.preact = getattr(block, "preact", False)
        self.skip = skip
        self.inplanes = 64
        self.dilation = 1
        self.groups = groups
        self.base_width = width_per_group

        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        if not self.preact:
            self.bn1 = norm_layer(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2,
                                       dilate=replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2,
                                       dilate=replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2,
                                       dilate=replace_stride_with_dilation[2])
        if self.preact:
            self.final_bn = norm_layer(512 * block.expansion)
            self.final_relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        # Zero-initialize the last BN in each residual branch, so that the branch starts with
        # zeros and each block behaves like an identity (+0.2~0.3% top-1, Goyal et al. 2017).
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_residual()

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        """One stage: ``blocks`` blocks of ``planes``; the first one strides (or dilates) and,
        when the stride or width changes, builds its projection shortcut ``downsample``."""
        # BEGIN SOLUTION resnet_make_layer
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        layers = [block(self.inplanes, planes, stride, None, self.groups, self.base_width,
                        previous_dilation, self._norm_layer, **self._block_kwargs)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=self._norm_layer, **self._block_kwargs))
        return nn.Sequential(*layers)
        # END SOLUTION

    def feature_stages(self):
        """stem (stride 2, before the max-pool), layer1 (4), layer2 (8), layer3 (16), layer4 (32)"""
        stem = [self.conv1] if self.preact else [self.conv1, self.bn1, self.relu]
        return [
            ("stem", stem),
            ("layer1", [self.maxpool, self.layer1]),
            ("layer2", [self.layer2]),
            ("layer3", [self.layer3]),
            ("layer4", [self.layer4]),
        ]

    def head(self):
        final = [self.final_bn, self.final_relu] if self.preact else []
        return final + [self.avgpool, self.flatten, self.fc]


def resnet18(**kwargs):
    """ResNet-18: BasicBlock, [2, 2, 2, 2]; 11.7M parameters, 1.81 GMACs at 224x224."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs):
    """ResNet-34: BasicBlock, [3, 4, 6, 3]; 21.8M parameters, 3.66 GMACs."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs):
    """ResNet-50: Bottleneck, [3, 4, 6, 3]; 25.6M parameters, 4.09 GMACs."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs):
    """ResNet-101: Bottleneck, [3, 4, 23, 3]; 44.5M parameters, 7.80 GMACs."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnet152(**kwargs):
    """ResNet-152: Bottleneck, [3, 8, 36, 3]; 60.2M parameters, 11.51 GMACs."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


def wide_resnet50_2(**kwargs):
    """Wide ResNet-50-2 (Zagoruyko & Komodakis 2016): bottleneck inner width doubled; 68.9M."""
    kwargs.setdefault("width_per_group", 128)
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def wide_resnet101_2(**kwargs):
    """Wide ResNet-101-2: bottleneck inner width doubled; 126.9M parameters."""
    kwargs.setdefault("width_per_group", 128)
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnext50_32x4d(**kwargs):
    """ResNeXt-50 32x4d: ResNet-50 with 32 groups of 4 channels per 64 planes; 25.0M parameters."""
    kwargs.setdefault("groups", 32)
    kwargs.setdefault("width_per_group", 4)
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnext101_32x8d(**kwargs):
    """ResNeXt-101 32x8d: 32 groups of 8 channels per 64 planes; 88.8M parameters."""
    kwargs.setdefault("groups", 32)
    kwargs.setdefault("width_per_group", 8)
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnext101_64x4d(**kwargs):
    """ResNeXt-101 64x4d: 64 groups of 4 channels per 64 planes; 83.5M parameters."""
    kwargs.setdefault("groups", 64)
    kwargs.setdefault("width_per_group", 4)
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def plain_resnet18(**kwargs):
    """Plain-18: ResNet-18's layers without any shortcut (the 2015 paper's baseline)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], skip=False, **kwargs)


def plain_resnet34(**kwargs):
    """Plain-34: ResNet-34's layers without any shortcut."""
    return ResNet(BasicBlock, [3, 4, 6, 3], skip=False, **kwargs)


def plain_resnet50(**kwargs):
    """Plain-50: ResNet-50's layers without any shortcut."""
    return ResNet(Bottleneck, [3, 4, 6, 3], skip=False, **kwargs)


def plain_resnet101(**kwargs):
    """Plain-101: ResNet-101's layers without any shortcut."""
    return ResNet(Bottleneck, [3, 4, 23, 3], skip=False, **kwargs)


def plain_resnet152(**kwargs):
    """Plain-152: ResNet-152's layers without any shortcut."""
    return ResNet(Bottleneck, [3, 8, 36, 3], skip=False, **kwargs)
