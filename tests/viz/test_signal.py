"""Forward signal at initialisation: a plain+BN block outputs ReLU of a unit Gaussian, a residual
block's output grows with depth."""
import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models
from tinyresnet.viz.signal import RECTIFIED_GAUSSIAN_STD, forward_signal, plot_forward_signal


def _x(size=8, n=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


def test_rectified_gaussian_std():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    assert RECTIFIED_GAUSSIAN_STD == pytest.approx(np.maximum(z, 0).std(), abs=1e-3)
    assert RECTIFIED_GAUSSIAN_STD == pytest.approx(0.5838, abs=1e-4)


@pytest.mark.parametrize("depth", [20, 56])
def test_plain_block_outputs_are_rectified_unit_gaussians(depth):
    tr.manual_seed(depth)
    signal = forward_signal(models.cifar_resnet(depth, skip=False), _x(seed=depth))
    assert len(signal.block_std) == (depth - 2) // 2
    # BN makes each channel's pre-activation mean 0, variance 1 exactly, but not Gaussian: in a
    # deep plain net its tails grow (kurtosis 3.2 in layer1 to 14 in layer3 of Plain-56), E|z|
    # falls below sqrt(2/pi), and std(ReLU(z)) = sqrt(1/2 - (E|z|/2)^2) rises above 0.584 by up to
    # ~11% in the last stage.  The first blocks are still Gaussian to within a few percent.
    np.testing.assert_allclose(signal.block_std[:3], RECTIFIED_GAUSSIAN_STD, atol=0.02)
    np.testing.assert_allclose(signal.block_std, RECTIFIED_GAUSSIAN_STD, atol=0.08)
    assert np.mean(signal.block_std) == pytest.approx(RECTIFIED_GAUSSIAN_STD, abs=0.035)
    # Every 3x3 conv is followed by a training-mode BN with gamma 1, beta 0: unit std.
    np.testing.assert_allclose(signal.conv_std, 1.0, atol=1e-3)


def test_residual_block_outputs_grow_with_depth():
    tr.manual_seed(0)
    model = models.cifar_resnet(56)
    signal = forward_signal(model, _x())
    std = signal.block_std.reshape(3, 9)  # three stages of nine blocks
    # Within a stage each block adds its branch's variance to its input's.
    assert np.all(np.diff(std, axis=1) > 0), std
    assert std[-1, -1] > 2 * std[0, 0] and std[-1, -1] > 3 * RECTIFIED_GAUSSIAN_STD


def test_conv_response_is_taken_after_the_bn_that_reads_it():
    """Pre-activation blocks: conv1's BN is the next layer's bn2; conv2's output feeds the sum,
    not a BN, so its own output is measured."""
    tr.manual_seed(0)
    model = models.cifar_resnet(8, preact=True)
    signal = forward_signal(model, _x(n=8))
    assert signal.conv_names == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1",
                                 "layer2.0.conv2", "layer3.0.conv1", "layer3.0.conv2"]
    std = dict(zip(signal.conv_names, signal.conv_std))
    assert std["layer1.0.conv1"] == pytest.approx(1.0, abs=1e-3)  # after bn2
    assert std["layer1.0.conv2"] != pytest.approx(1.0, abs=1e-2)  # raw conv output


def test_plot_forward_signal(tmp_path):
    signals = {}
    for label, skip in (("plain-20", False), ("ResNet-20", True)):
        tr.manual_seed(0)
        signals[label] = forward_signal(models.cifar_resnet(20, skip=skip), _x(n=8))
    fig = plot_forward_signal(signals)
    fig.savefig(tmp_path / "signal.png")
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
