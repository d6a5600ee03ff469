"""Option A shortcut (subsample, zero channels) and the projection helper."""
import numpy as np
import pytest

from tinyresnet import nn
from tinyresnet.gradcheck import check_module
from tinyresnet.models import ShortcutA, projection


def test_option_a_subsamples_and_pads_evenly(rng):
    x = rng.standard_normal((2, 4, 5, 5))
    y = ShortcutA(4, 8, stride=2)(x)
    assert y.shape == (2, 8, 3, 3)
    assert not y[:, :2].any() and not y[:, 6:].any()
    np.testing.assert_array_equal(y[:, 2:6], x[:, :, ::2, ::2])


def test_option_a_odd_padding_puts_the_extra_channel_after(rng):
    y = ShortcutA(2, 5, stride=1)(rng.standard_normal((1, 2, 3, 3)))
    assert not y[:, 0].any() and y[:, 1:3].all() and not y[:, 3:].any()


def test_option_a_gradient(rng):
    report = check_module(ShortcutA(3, 6, stride=2), rng.standard_normal((2, 3, 5, 4)))
    assert report.ok, str(report)


def test_option_a_has_no_parameters_and_keeps_float32(rng):
    m = ShortcutA(16, 32, 2)
    assert m.parameters() == [] and m.state_dict() == {}
    assert m(rng.standard_normal((1, 16, 4, 4)).astype(np.float32)).dtype == np.float32


def test_option_a_errors():
    with pytest.raises(ValueError, match="at least in_channels"):
        ShortcutA(8, 4)
    with pytest.raises(ValueError, match="ShortcutA.*expected input with 4 channels"):
        ShortcutA(4, 8, 2)(np.zeros((1, 3, 4, 4)))


def test_projection_is_torchvisions_downsample():
    p = projection(64, 256, stride=2)
    assert [type(m) for m in p] == [nn.Conv2d, nn.BatchNorm2d]
    assert p[0].weight.shape == (256, 64, 1, 1) and p[0].stride == (2, 2) and p[0].bias is None
