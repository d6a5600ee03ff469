r"""The CIFAR-10 ResNets of He et al. 2015, section 4.2: 6n + 2 layers.

A 3x3 conv with 16 filters, then three stages of n basic blocks on 32x32, 16x16 and 8x8 maps with
16, 32 and 64 filters, global average pooling and a 10-way fc.  Where a stage halves the map and
doubles the width the shortcut is option A (identity, subsample, zero channels: no parameters)
or option B (projection: 1x1 conv + BN).

| depth | n  | parameters (option A) | multiply-adds per 32x32 image |
|-------|----|-----------------------|-------------------------------|
| 20    | 3  | 269,722 (0.27M)       | 40.6M                         |
| 32    | 5  | 464,154 (0.46M)       | 68.9M                         |
| 44    | 7  | 658,586 (0.66M)       | 97.2M                         |
| 56    | 9  | 853,018 (0.85M)       | 125.5M                        |
| 110   | 18 | 1,727,962 (1.7M)      | 252.9M                        |

``skip=False`` gives the plain nets of the paper's Fig. 6; ``preact=True`` the pre-activation
blocks of He et al. 2016 (stem without BN-ReLU, final BN-ReLU before the pool).
"""
from .. import nn
from .block import ResidualBlock, conv3x3
from .features import FeatureNetwork
from .preact import PreActBasicBlock
from .resnet import BasicBlock
from .shortcut import ShortcutA

__all__ = [
    "CifarResNet", "cifar_resnet",
    "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56", "cifar_resnet110",
    "plain_cifar_resnet20", "plain_cifar_resnet32", "plain_cifar_resnet44", "plain_cifar_resnet56",
    "plain_cifar_resnet110",
    "preact_cifar_resnet20", "preact_cifar_resnet32", "preact_cifar_resnet44",
    "preact_cifar_resnet56", "preact_cifar_resnet110",
]


class CifarResNet(FeatureNetwork):
    """ResNet-(6n+2) for 32x32 images.

    Parameters
    ----------
    depth : 6n + 2 (20, 32, 44, 56, 110, ...)
    num_classes : size of the fc output (10 for CIFAR-10)
    shortcut : "A" (zero-padding identity, parameter-free) or "B" (projection)
    skip : False builds the plain twin (no shortcuts at all)
    preact : pre-activation blocks (BN-ReLU-conv)
    in_channels : channels of the input image
    zero_init_residual : start every block as its shortcut

    Input (N, in_channels, H, W) -> logits (N, num_classes); features "stem" (16 channels, full
    resolution), "layer1" (16), "layer2" (32, /2), "layer3" (64, /4).
    """

    def __init__(self, depth, num_classes=10, shortcut="A", skip=True, preact=False, in_channels=3,
                 zero_init_residual=False):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"CifarResNet: depth must be 6n + 2 for some n >= 1 (20, 32, 44, 56, 110, ...), "
                f"got {depth!r}"
            )
        if shortcut not in ("A", "B"):
            raise ValueError(f"CifarResNet: shortcut must be 'A' or 'B', got {shortcut!r}")
        self.depth, self.shortcut, self.skip, self.preact = depth, shortcut, skip, preact
        block = PreActBasicBlock if preact else BasicBlock
        n = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        if not preact:
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, 16, n)
        self.layer2 = self._make_layer(block, 32, n, stride=2)
        self.layer3 = self._make_layer(block, 64, n, stride=2)
        if preact:
            self.final_bn = nn.BatchNorm2d(64)
            self.final_relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(64, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_residual()

    def _make_layer(self, block, planes, blocks, stride=1):
        # BEGIN SOLUTION cifar_make_layer
        # Option B needs nothing here: a block builds its own projection when its stride or
        # width changes (1x1 conv + BN; a bare 1x1 conv in a pre-activation block).
        downsample = None
        if self.skip and self.shortcut == "A" and (stride != 1 or self.inplanes != planes):
            downsample = ShortcutA(self.inplanes, planes, stride)
        layers = [block(self.inplanes, planes, stride, downsample, skip=self.skip)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, skip=self.skip))
        return nn.Sequential(*layers)
        # END SOLUTION

    def feature_stages(self):
        stem = [self.conv1] if self.preact else [self.conv1, self.bn1, self.relu]
        return [("stem", stem), ("layer1", [self.layer1]), ("layer2", [self.layer2]),
                ("layer3", [self.layer3])]

    def head(self):
        final = [self.final_bn, self.final_relu] if self.preact else []
        return final + [self.avgpool, self.flatten, self.fc]

    def extra_repr(self):
        plain = "" if self.skip else ", skip=False"
        return f"depth={self.depth}, shortcut={self.shortcut!r}{plain}"


def cifar_resnet(depth, num_classes=10, shortcut="A", skip=True, preact=False, **kwargs):
    """ResNet-``depth`` for CIFAR (depth = 6n + 2); see CifarResNet."""
    return CifarResNet(depth, num_classes=num_classes, shortcut=shortcut, skip=skip, preact=preact,
                       **kwargs)


def cifar_resnet20(**kwargs):
    """CIFAR ResNet-20 (n = 3): 0.27M parameters with option A."""
    return cifar_resnet(20, **kwargs)


def cifar_resnet32(**kwargs):
    """CIFAR ResNet-32 (n = 5): 0.46M parameters."""
    return cifar_resnet(32, **kwargs)


def cifar_resnet44(**kwargs):
    """CIFAR ResNet-44 (n = 7): 0.66M parameters."""
    return cifar_resnet(44, **kwargs)


def cifar_resnet56(**kwargs):
    """CIFAR ResNet-56 (n = 9): 0.85M parameters."""
    return cifar_resnet(56, **kwargs)


def cifar_resnet110(**kwargs):
    """CIFAR ResNet-110 (n = 18): 1.7M parameters."""
    return cifar_resnet(110, **kwargs)


def plain_cifar_resnet20(**kwargs):
    """Plain-20: CIFAR ResNet-20's layers without shortcuts (paper, Fig. 6)."""
    return cifar_resnet(20, skip=False, **kwargs)


def plain_cifar_resnet32(**kwargs):
    """Plain-32."""
    return cifar_resnet(32, skip=False, **kwargs)


def plain_cifar_resnet44(**kwargs):
    """Plain-44."""
    return cifar_resnet(44, skip=False, **kwargs)


def plain_cifar_resnet56(**kwargs):
    """Plain-56: deeper than Plain-20 and, as the paper shows, worse even in training error."""
    return cifar_resnet(56, skip=False, **kwargs)


def plain_cifar_resnet110(**kwargs):
    """Plain-110."""
    return cifar_resnet(110, skip=False, **kwargs)


def preact_cifar_resnet20(**kwargs):
    """Pre-activation CIFAR ResNet-20 (He et al. 2016)."""
    return cifar_resnet(20, preact=True, **kwargs)


def preact_cifar_resnet32(**kwargs):
    """Pre-activation CIFAR ResNet-32."""
    return cifar_resnet(32, preact=True, **kwargs)


def preact_cifar_resnet44(**kwargs):
    """Pre-activation CIFAR ResNet-44."""
    return cifar_resnet(44, preact=True, **kwargs)


def preact_cifar_resnet56(**kwargs):
    """Pre-activation CIFAR ResNet-56."""
    return cifar_resnet(56, preact=True, **kwargs)


def preact_cifar_resnet110(**kwargs):
    """Pre-activation CIFAR ResNet-110 (the 2016 paper's 6.37% on CIFAR-10)."""
    return cifar_resnet(110, preact=True, **kwargs)
