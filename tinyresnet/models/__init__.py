"""The ResNet family: blocks, the ImageNet and CIFAR networks, their plain and pre-activation
twins, a layer-by-layer summary and a registry by name.

    from tinyresnet import models
    model = models.resnet18(num_classes=10)
    model = models.get_model("cifar_resnet56")
    print(models.summary(model, (3, 32, 32)))
    for name, block in models.residual_blocks(model):   # input to output
        block.downsample                               # None: identity shortcut
"""
from .block import ResidualBlock, conv1x1, conv3x3, residual_blocks
from .cifar import (
    CifarResNet,
    cifar_resnet,
    cifar_resnet20,
    cifar_resnet32,
    cifar_resnet44,
    cifar_resnet56,
    cifar_resnet110,
    plain_cifar_resnet20,
    plain_cifar_resnet32,
    plain_cifar_resnet44,
    plain_cifar_resnet56,
    plain_cifar_resnet110,
    preact_cifar_resnet20,
    preact_cifar_resnet32,
    preact_cifar_resnet44,
    preact_cifar_resnet56,
    preact_cifar_resnet110,
)
from .features import FeatureNetwork
from .preact import (
    PreActBasicBlock,
    PreActBottleneck,
    preact_resnet18,
    preact_resnet34,
    preact_resnet50,
    preact_resnet101,
    preact_resnet152,
)
from .registry import get_model, list_models
from .resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    plain_resnet18,
    plain_resnet34,
    plain_resnet50,
    plain_resnet101,
    plain_resnet152,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from .shortcut import ShortcutA, projection
from .summary import LayerSummary, ModelSummary, summary

__all__ = [
    "ResidualBlock", "BasicBlock", "Bottleneck", "PreActBasicBlock", "PreActBottleneck",
    "ShortcutA", "projection", "conv1x1", "conv3x3", "residual_blocks",
    "FeatureNetwork", "ResNet", "CifarResNet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "plain_resnet18", "plain_resnet34", "plain_resnet50", "plain_resnet101", "plain_resnet152",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
    "cifar_resnet", "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56",
    "cifar_resnet110",
    "plain_cifar_resnet20", "plain_cifar_resnet32", "plain_cifar_resnet44", "plain_cifar_resnet56",
    "plain_cifar_resnet110",
    "preact_cifar_resnet20", "preact_cifar_resnet32", "preact_cifar_resnet44",
    "preact_cifar_resnet56", "preact_cifar_resnet110",
    "get_model", "list_models", "summary", "ModelSummary", "LayerSummary",
]
