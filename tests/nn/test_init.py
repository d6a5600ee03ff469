"""Initialisation as PyTorch does it, and seeded reproducibility."""
import math

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import nn


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(16, 32, 3), 16 * 9),
    (lambda: nn.Conv2d(8, 64, (1, 5)), 8 * 5),
    (lambda: nn.Linear(200, 50), 200),
])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); so does the bias."""
    module = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = module.weight.data, module.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # filling the range: the extremes of thousands of uniform draws lie near the bound
    assert np.abs(w).max() > 0.95 * bound
    # a uniform on (-B, B) has variance B^2 / 3; loose bounds, thousands of samples
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.15)
    assert abs(w.mean()) < 0.1 * bound


def test_kaiming_normal_fan_out_std():
    """torchvision's ResNet: kaiming_normal_(mode='fan_out', nonlinearity='relu'),
    std = sqrt(2 / (out_channels * kh * kw))."""
    conv = nn.Conv2d(64, 128, 3)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    expected = math.sqrt(2 / (128 * 9))
    assert conv.weight.dtype == np.float32
    assert conv.weight.data.std() == pytest.approx(expected, rel=0.05)  # 73 728 samples
    assert abs(conv.weight.data.mean()) < 0.05 * expected
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    assert conv.weight.data.std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)


def test_batchnorm_init_is_one_and_zero():
    bn = nn.BatchNorm2d(5)
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert int(bn.num_batches_tracked) == 0


def test_constant_zeros_ones_keep_dtype():
    p = nn.Parameter(np.empty((2, 3), dtype=np.float32))
    assert nn.init.constant_(p, 0.5) is p
    assert p.dtype == np.float32 and (p.data == 0.5).all()
    nn.init.zeros_(p)
    assert not p.data.any()
    nn.init.ones_(p)
    assert (p.data == 1).all()


def test_calculate_gain():
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("linear") == 1.0
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="init: unsupported nonlinearity 'tanhh'"):
        nn.init.calculate_gain("tanhh")


def test_fan_needs_two_dimensions():
    with pytest.raises(ValueError, match=r"init: fan in and fan out need at least 2 dimensions, got shape \(4,\)"):
        nn.init.kaiming_uniform_(nn.Parameter(np.zeros(4)))


def test_manual_seed_reproduces_construction():
    def build():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))

    tr.manual_seed(7)
    a = build()
    tr.manual_seed(7)
    b = build()
    tr.manual_seed(8)
    c = build()
    for (name, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
        if name.endswith("weight") and not name.startswith("1."):
            assert not np.array_equal(pa.data, pc.data), name


def test_manual_seed_reproduces_dropout():
    x = np.ones((4, 16))
    drop = nn.Dropout(0.5)
    tr.manual_seed(3)
    first = drop(x)
    tr.manual_seed(3)
    np.testing.assert_array_equal(drop(x), first)
    assert not np.array_equal(drop(x), first)
