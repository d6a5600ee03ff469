"""The ImageNet ResNets: parameter counts, torchvision's names, options, plain twins, dtypes,
loading a state dict of another architecture, and ResNet-152 at full size (slow)."""
import resource
import sys

import numpy as np
import pytest

from tinyresnet import models, nn

IMAGENET_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
}


def count(model):
    return sum(p.size for p in model.parameters())


@pytest.mark.parametrize("name, expected", IMAGENET_PARAMS.items())
def test_parameter_counts_equal_torchvisions(name, expected, skip_init):
    assert count(models.get_model(name)) == expected


def test_torchvision_key_names(skip_init):
    keys = list(models.resnet50().state_dict())
    assert keys[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                        "bn1.running_var", "bn1.num_batches_tracked"]
    assert "layer1.0.downsample.0.weight" in keys and "layer1.1.downsample.0.weight" not in keys
    assert "layer4.2.bn3.running_var" in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert len(keys) == 320  # torchvision's resnet50 state dict has 320 entries


def test_resnext_grouped_conv_shapes_and_keys(skip_init):
    """ResNeXt-50 32x4d: torchvision's keys (those of resnet50) and its grouped 3x3 weights."""
    model = models.resnext50_32x4d()
    assert list(model.state_dict()) == list(models.resnet50().state_dict())
    conv2 = model.layer1[0].conv2
    assert (conv2.groups, conv2.weight.shape) == (32, (128, 4, 3, 3))
    assert model.layer4[0].conv2.weight.shape == (1024, 32, 3, 3)
    assert models.resnext101_64x4d().layer1[0].conv2.weight.shape == (256, 4, 3, 3)


def test_initialisation_follows_torchvision():
    model = models.resnet18(num_classes=10)
    w = model.layer3[0].conv2.weight.data  # kaiming normal, fan_out = 256 * 3 * 3
    assert w.std() == pytest.approx(np.sqrt(2 / (256 * 9)), rel=0.02)
    assert (model.layer1[0].bn2.weight.data == 1).all() and not model.layer1[0].bn2.bias.data.any()


def test_zero_init_residual_makes_each_block_start_as_its_shortcut(rng):
    model = models.resnet18(num_classes=10, zero_init_residual=True).eval()
    assert all(not m.bn2.weight.data.any() for _, m in models.residual_blocks(model))
    x = np.abs(rng.standard_normal((1, 128, 4, 4))).astype(np.float32)
    np.testing.assert_array_equal(model.layer2[1](x), x)  # relu(0 + x) = x for x >= 0
    block = models.Bottleneck(16, 4)
    block.zero_init_residual()
    assert not block.bn3.weight.data.any() and block.bn2.weight.data.all()


def test_dilation_keeps_the_resolution(skip_init):
    model = models.resnet50(replace_stride_with_dilation=[False, True, True])
    assert model.layer3[1].conv2.dilation == (2, 2) and model.layer4[1].conv2.dilation == (4, 4)
    assert model.layer3[0].conv2.dilation == (1, 1)  # the first block keeps the previous dilation
    assert models.summary(model, (3, 64, 64)).rows[-4].output_shape == (1, 2048, 8, 8)  # stride 8
    with pytest.raises(ValueError, match="3-element"):
        models.resnet50(replace_stride_with_dilation=[True])


def test_in_channels_num_classes_and_float32(rng):
    model = models.resnet18(in_channels=1, num_classes=7)
    x = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 7) and y.dtype == np.float32
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_wide_and_stride_in_1x1_options(skip_init):
    wide = models.wide_resnet50_2()
    assert wide.layer1[0].conv1.weight.shape == (128, 64, 1, 1)
    assert count(wide) == 68_883_240  # torchvision's wide_resnet50_2
    with pytest.raises(ValueError, match="stride_in_1x1 applies to bottleneck"):
        models.resnet18(stride_in_1x1=True)
    with pytest.raises(ValueError, match="BasicBlock: only groups=1"):
        models.resnet18(groups=32, width_per_group=4)


def test_plain_twin_has_the_same_layers_without_shortcuts(skip_init):
    plain, residual = models.plain_resnet34(), models.resnet34()
    plain_keys = list(plain.state_dict())
    assert plain_keys == [k for k in residual.state_dict() if ".downsample." not in k]
    assert all(not b.skip and b.downsample is None for _, b in models.residual_blocks(plain))
    assert models.resnet34(skip=False).state_dict().keys() == plain.state_dict().keys()


def test_loading_another_architecture_names_the_first_bad_key(skip_init):
    sd = models.resnet18().state_dict()
    with pytest.raises(ValueError, match=r"missing key 'layer1\.2\.conv1\.weight' "
                                         r"\(expected shape \(64, 64, 3, 3\)\)"):
        models.resnet34().load_state_dict(sd)
    sd50 = models.resnet50().state_dict()
    with pytest.raises(ValueError, match=r"size mismatch for 'layer1\.0\.conv1\.weight': "
                                         r"expected shape \(64, 64, 3, 3\), got \(64, 64, 1, 1\)"):
        models.resnet18().load_state_dict(sd50)


def test_state_dict_round_trip_gives_identical_outputs(rng):
    a, b = models.cifar_resnet20().eval(), models.cifar_resnet20().eval()
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert not np.array_equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x), b(x))


def test_bad_input_is_named_at_the_layer(skip_init):
    with pytest.raises(ValueError, match="conv1.*expected input with 3 channels"):
        models.resnet18()(np.zeros((1, 1, 32, 32), dtype=np.float32))


@pytest.mark.slow
def test_resnet152_forward_backward_at_224(rng, capsys):
    model = models.resnet152()
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    loss_fn = nn.CrossEntropyLoss()
    loss = loss_fn(model(x), np.array([1, 2]))
    dx = model.backward(loss_fn.backward())
    assert np.isfinite(loss) and dx.shape == x.shape
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_gib = peak / (2**30 if sys.platform == "darwin" else 2**20)
    with capsys.disabled():
        print(f"\nResNet-152, 224x224, batch 2, float32, forward + backward: peak RSS "
              f"{peak_gib:.2f} GiB (whole test process)")
