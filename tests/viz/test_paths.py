"""Paths through a ResNet (Veit et al. 2016): lengths are Binomial(n, 1/2); the gradient a path
carries falls with its length in a trained network."""
import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models
from tinyresnet.viz.paths import path_gradient_magnitude, path_length_distribution, plot_paths
from tinyresnet.viz.split import gradient_split


@pytest.mark.parametrize("n", [0, 1, 2, 5, 9, 12])
def test_distribution_counts_every_path(n):
    """Enumerate the 2^n paths (skip or branch at each block) and count their lengths."""
    counts = [0] * (n + 1)
    for choice in itertools.product((0, 1), repeat=n):
        counts[sum(choice)] += 1
    d = path_length_distribution(n)
    assert d.counts == counts
    assert list(d.lengths) == list(range(n + 1))
    # Binomial(n, 1/2) exactly: the probabilities are the exact fractions, as floats.
    assert all(Fraction(p) == Fraction(c, 2**n) for p, c in zip(d.probabilities, counts))


def test_distribution_for_resnet110_and_its_moments():
    d = path_length_distribution(54)  # ResNet-110: 54 blocks, as in Veit et al.'s Fig. 6
    assert sum(d.counts) == 2**54 and d.counts[27] == comb(54, 27)
    assert float(np.sum(d.probabilities)) == pytest.approx(1.0, abs=1e-15)
    assert float(d.lengths @ d.probabilities) == pytest.approx(27.0)
    assert float(((d.lengths - 27.0) ** 2) @ d.probabilities) == pytest.approx(54 / 4)
    with pytest.raises(ValueError, match="n >= 0"):
        path_length_distribution(-1)


def test_paths_of_length_zero_and_n_are_the_shortcut_and_branch_products(rng):
    """Length 0 = every block's shortcut part, length n = every branch part: with one block the
    two measured paths are exactly the block's grad_shortcut and grad_branch."""
    from tinyresnet import nn
    from tinyresnet.models import BasicBlock

    model = nn.Sequential(models.conv3x3(3, 8), BasicBlock(8, 8), nn.AdaptiveAvgPool2d((1, 1)),
                          nn.Flatten(), nn.Linear(8, 10)).double()
    model.eval()  # deterministic forward, so repeated passes see the same network
    x, y = rng.standard_normal((4, 3, 6, 6)), rng.integers(0, 10, 4)
    split = gradient_split(model, x, y)
    paths = path_gradient_magnitude(model, x, y, samples=2)
    assert paths.n == 1
    np.testing.assert_allclose(paths.magnitudes[0], split.shortcut_norm[0], rtol=1e-12)
    np.testing.assert_allclose(paths.magnitudes[1], split.branch_norm[0], rtol=1e-12)


def test_measurement_leaves_the_model_as_it_was(rng):
    model = models.cifar_resnet(8, in_channels=1)
    x, y = rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    path_gradient_magnitude(model, x, y, samples=1)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert all("backward" not in vars(b) for _, b in models.residual_blocks(model))
    with pytest.raises(ValueError, match="0..3"):
        path_gradient_magnitude(model, x, y, lengths=[4])


def test_gradient_falls_with_path_length_in_a_trained_resnet(trained_resnet20):
    """Veit et al.: gradient magnitude falls (exponentially) with path length; on ResNet-20 after
    3 epochs on the digits it falls ~70x from k = 0 to k = 9."""
    model, x, y = trained_resnet20
    paths = path_gradient_magnitude(model, x[:64], y[:64], lengths=[0, 2, 4, 6, 9], samples=4)
    assert np.all(np.diff(paths.mean) < 0), paths.mean
    assert paths.mean[0] > 10 * paths.mean[-1], paths.mean


def test_plot_paths(tmp_path, rng):
    model = models.cifar_resnet(8, in_channels=1)
    x, y = rng.standard_normal((8, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 8)
    g = path_gradient_magnitude(model, x, y, samples=2)
    for fig in (plot_paths(path_length_distribution(3), {"ResNet-8 at init": g}),
                plot_paths(path_length_distribution(54))):
        fig.savefig(tmp_path / "paths.png")
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
