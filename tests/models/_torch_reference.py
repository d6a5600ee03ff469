"""Plain-PyTorch copies of torchvision's ResNet and of a CIFAR ResNet with option A shortcuts.

torchvision itself may not be installable next to the CPU torch wheel, so its ``resnet.py``
structure is rebuilt here, module names included, for parity tests: same names means the two
state dicts have the same keys and one loads into the other unchanged.  Import only after
``pytest.importorskip("torch")``.
"""
import numpy as np
import torch
import torch.nn.functional as TF
from torch import nn


def conv3x3(in_planes, out_planes, stride=1, dilation=1, groups=1):
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, bias=False,
                     dilation=dilation, groups=groups)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1, groups=1,
                 base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, dilation, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision.models.resnet.ResNet, without the dilation option and weights plumbing;
    ``groups`` and ``width_per_group`` as torchvision (ResNeXt, Wide ResNet; Bottleneck only)."""

    def __init__(self, block, layers, num_classes=1000, groups=1, width_per_group=64):
        super().__init__()
        self.inplanes = 64
        self.block_kwargs = {} if groups == 1 and width_per_group == 64 else dict(
            groups=groups, base_width=width_per_group)
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, **self.block_kwargs)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **self.block_kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ShortcutA(nn.Module):
    """Option A: x[:, :, ::2, ::2] with (out - in) // 2 zero channels on each side."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.stride, self.pad = stride, (planes - in_planes) // 2
        self.extra = planes - in_planes - self.pad

    def forward(self, x):
        return TF.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.extra))


class CifarBlock(BasicBlock):
    def __init__(self, inplanes, planes, stride=1):
        shortcut = ShortcutA(inplanes, planes, stride) if stride != 1 or inplanes != planes else None
        super().__init__(inplanes, planes, stride, shortcut)


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, 16, n, 1)
        self.layer2 = self._make_layer(16, 32, n, 2)
        self.layer3 = self._make_layer(32, 64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def _make_layer(inplanes, planes, blocks, stride):
        return nn.Sequential(CifarBlock(inplanes, planes, stride),
                             *[CifarBlock(planes, planes) for _ in range(1, blocks)])

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_batchnorm(model, rng):
    """Give every BN of a tinyresnet model non-trivial gamma, beta and running statistics, so
    that eval mode and the affine parameters are actually exercised."""
    for name, array in model.state_dict().items():
        if name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
            array[...] = rng.uniform(0.5, 1.5, array.shape)
        elif name.endswith(".bias") and not name.startswith("fc"):
            array[...] = rng.normal(0, 0.1, array.shape)
        elif name.endswith("running_mean"):
            array[...] = rng.normal(0, 0.1, array.shape)
        elif name.endswith("running_var"):
            array[...] = rng.uniform(0.5, 1.5, array.shape)


def load_into_torch(make_torch_model, model):
    """Build the torch model without initialising it (on the meta device) and give it a copy of
    a tinyresnet model's state dict: the keys must match one to one."""
    with torch.device("meta"):
        torch_model = make_torch_model()
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    torch_model.load_state_dict(state, strict=True, assign=True)
    return torch_model
