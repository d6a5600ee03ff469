"""CIFAR ResNets (6n + 2): parameter counts with option A and B, structure, plain twins, errors."""
import numpy as np
import pytest

from tinyresnet import models
from tinyresnet.models import ShortcutA

OPTION_A_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


def count(model):
    return sum(p.size for p in model.parameters())


@pytest.mark.parametrize("depth, expected", OPTION_A_PARAMS.items())
def test_option_a_parameter_counts(depth, expected, skip_init):
    assert count(models.cifar_resnet(depth)) == expected
    assert count(models.get_model(f"cifar_resnet{depth}")) == expected


def test_option_b_adds_two_projections():
    # 1x1 conv + BN at the two transitions: 16*32 + 2*32 and 32*64 + 2*64.
    assert count(models.cifar_resnet(20, shortcut="B")) == 269_722 + 576 + 2176


def test_structure_and_shapes(rng):
    model = models.cifar_resnet20()
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [3, 3, 3]
    assert isinstance(model.layer2[0].downsample, ShortcutA)
    assert model.layer2[1].downsample is None and model.layer1[0].downsample is None
    assert model.fc.weight.shape == (10, 64)
    features = model.forward_features(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    assert {k: v.shape for k, v in features.items()} == {
        "stem": (2, 16, 32, 32), "layer1": (2, 16, 32, 32),
        "layer2": (2, 32, 16, 16), "layer3": (2, 64, 8, 8),
    }


def test_plain_twin_has_identical_layers():
    plain, residual = models.plain_cifar_resnet56(), models.cifar_resnet56()
    assert list(plain.state_dict()) == list(residual.state_dict())  # option A adds no keys
    assert count(plain) == count(residual) == 853_018
    assert all(not b.skip for _, b in models.residual_blocks(plain))
    assert all(b.skip for _, b in models.residual_blocks(residual))


@pytest.mark.parametrize("depth", [21, 18, 2, 7, "20"])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        models.cifar_resnet(depth)


def test_shortcut_option_is_checked():
    with pytest.raises(ValueError, match="shortcut must be 'A' or 'B'"):
        models.cifar_resnet(20, shortcut="C")


def test_any_6n_plus_2_depth_builds():
    model = models.cifar_resnet(8, num_classes=3)  # n = 1
    assert len(model.layer1) == 1 and model.fc.out_features == 3
