"""Pre-activation ResNets (He et al. 2016): BN-ReLU-conv order, the shared pre-activation of a
projection shortcut (any norm layer, affine or not), the final BN-ReLU."""
from functools import partial

import numpy as np
import pytest

from tinyresnet import models, nn
from tinyresnet.gradcheck import check_module
from tinyresnet.models import PreActBasicBlock, PreActBottleneck


def test_preact_basic_block_order_and_no_relu_after_the_sum(rng):
    block = PreActBasicBlock(4, 4).double()
    x = rng.standard_normal((2, 4, 5, 5))
    y = block(x)
    branch = block.conv2(block.relu2(block.bn2(block.conv1(block.relu1(block.bn1(x))))))
    np.testing.assert_allclose(y, branch + x, rtol=1e-12)
    assert (y < 0).any()  # nothing clips the sum


def test_projection_reads_the_pre_activated_input(rng):
    block = PreActBasicBlock(4, 8, stride=2).double()
    assert [type(m) for m in block.downsample] == [nn.Conv2d]  # bare 1x1 conv, as in the paper
    x = rng.standard_normal((2, 4, 6, 6))
    y = block(x)
    a = block.relu1(block.bn1(x))
    branch = block.conv2(block.relu2(block.bn2(block.conv1(a))))
    np.testing.assert_allclose(y, branch + block.downsample(a), rtol=1e-12)


@pytest.mark.parametrize("block_class, inplanes, planes, out_channels", [
    (PreActBottleneck, 8, 4, 16), (PreActBasicBlock, 4, 8, 8),
], ids=["bottleneck", "basic"])
def test_projection_block_without_affine_norm_gradchecks(block_class, inplanes, planes,
                                                          out_channels, rng):
    """norm_layer without gamma/beta: backward goes through bn1's own backward (it once reached
    into bn1's cache and added gamma/beta's gradients by hand: AttributeError on None)."""
    block = block_class(inplanes, planes, stride=2,
                        norm_layer=partial(nn.BatchNorm2d, affine=False)).double()
    assert block.bn1.weight is None and block.downsample is not None
    x = rng.standard_normal((2, inplanes, 6, 6))
    assert block(x).shape == (2, out_channels, 3, 3)
    block.backward(rng.standard_normal((2, out_channels, 3, 3)))
    report = check_module(block, x)
    assert report.ok, str(report)


def test_projection_block_gradients_match_torch(rng):
    """The shared pre-activation's gradient is the sum of the branch's and the projection's."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    block = PreActBottleneck(8, 4, stride=2, norm_layer=partial(nn.BatchNorm2d, affine=False))
    block.double()
    x, dy = rng.standard_normal((2, 8, 6, 6)), rng.standard_normal((2, 16, 3, 3))
    w = {k: torch.tensor(v, requires_grad=True)
         for k, v in block.state_dict().items() if k.endswith("weight")}
    xt = torch.tensor(x, requires_grad=True)

    def bn_relu(t):
        return torch.relu(F.batch_norm(t, None, None, training=True))

    a = bn_relu(xt)
    out = F.conv2d(bn_relu(F.conv2d(a, w["conv1.weight"])), w["conv2.weight"], stride=2, padding=1)
    out = F.conv2d(bn_relu(out), w["conv3.weight"]) + F.conv2d(a, w["downsample.0.weight"], stride=2)
    out.backward(torch.from_numpy(dy))
    block(x)
    np.testing.assert_allclose(block.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in block.named_parameters():
        np.testing.assert_allclose(p.grad, w[name].grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_networks_have_no_stem_bn_and_a_final_bn_relu(skip_init):
    model = models.preact_resnet18(num_classes=10)
    assert "bn1" not in model._modules and [n for n, _ in model.feature_stages()][0] == "stem"
    assert isinstance(model.final_bn, nn.BatchNorm2d) and model.final_bn.num_features == 512
    cifar = models.preact_cifar_resnet20()
    assert cifar.final_bn.num_features == 64
    assert isinstance(cifar.layer2[0], PreActBasicBlock)
    assert isinstance(models.preact_resnet50().layer1[0], PreActBottleneck)


def test_preact_cifar_parameter_count(skip_init):
    # Against option A ResNet-20 (269,722): the final BN adds 2*64, the stem loses its BN (2*16),
    # and the first BN of layer2.0 / layer3.0 now normalises the block's input, 16 / 32 channels
    # instead of 32 / 64 (-2*16, -2*32): the same total.
    assert sum(p.size for p in models.preact_cifar_resnet20().parameters()) == (
        269_722 + 128 - 32 - 32 - 64)


def test_zero_init_residual_makes_preact_blocks_identities(rng):
    model = models.preact_cifar_resnet20(zero_init_residual=True).double()
    x = rng.standard_normal((2, 16, 8, 8))
    np.testing.assert_array_equal(model.layer1[1](x), x)
    # The last BN keeps gamma = 1, so its ReLU passes gradient and training can start.
    assert model.layer1[1].bn2.weight.data.all()


def test_plain_preact_block_is_just_the_branch(rng):
    block = PreActBasicBlock(4, 8, stride=2, skip=False).double()
    assert block.downsample is None
    x = rng.standard_normal((2, 4, 6, 6))
    y = block(x)
    np.testing.assert_allclose(
        y, block.conv2(block.relu2(block.bn2(block.conv1(block.relu1(block.bn1(x)))))), rtol=1e-12)
    with pytest.raises(ValueError, match="plain block"):
        PreActBasicBlock(4, 8, stride=2, downsample=nn.Identity(), skip=False)
