"""Shattered gradients (Balduzzi et al. 2017) measured on the package's own toy networks."""
import numpy as np
import pytest

from tinyresnet.gradcheck import numerical_gradient
from tinyresnet.viz.shattered import (
    autocorrelation, input_gradient, plot_shattering, shattering, toy_network,
)


def test_autocorrelation_of_known_sequences():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(4096)
    rho = autocorrelation(noise, 3)
    assert rho[0] == pytest.approx(1.0)
    assert np.all(np.abs(rho[1:]) < 0.05)  # white noise: 4/sqrt(N) is ~4 standard errors
    smooth = np.sin(np.linspace(0, 2 * np.pi, 4096))
    assert autocorrelation(smooth, 1)[1] > 0.99
    alternating = np.tile([1.0, -1.0], 100)
    assert autocorrelation(alternating, 1)[1] == pytest.approx(-1.0, abs=0.01)
    with pytest.raises(ValueError, match="constant"):
        autocorrelation(np.ones(10))


@pytest.mark.parametrize("residual", [False, True])
def test_input_gradient_matches_finite_differences(residual):
    """df/dx with BN statistics frozen at the grid's: the finite difference of the eval-mode net."""
    net = toy_network(3, residual=residual, width=16)
    # An even number of points: none sits at the grid's mean, where the first BN's output (its
    # input is affine in x) is exactly 0, on the kink of the ReLU after it.
    x = np.linspace(-2, 2, 10)
    g = input_gradient(net, x)
    net.eval()  # statistics now hold the grid's, as input_gradient froze them
    numeric = numerical_gradient(lambda v: net(v[:, None])[:, 0], x.copy())
    # Each output depends on its own input only, so d(sum f)/dx_i is df(x_i)/dx_i.
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


def test_plain_shatters_and_residual_does_not():
    """Lag-1 autocorrelation of df/dx: plain + BN near 0 by depth 24, residual clearly > 0 at 50."""
    plain = shattering([1, 24], residual=False, seeds=(0, 1, 2))
    residual = shattering([1, 50], residual=True, seeds=(0, 1, 2))
    assert plain.lag1[0] > 0.9 and residual.lag1[0] > 0.9  # one layer: smooth either way
    assert abs(plain.lag1[1]) < 0.2, plain.autocorrelations[:, :, 1]
    assert residual.lag1[1] > 0.5, residual.autocorrelations[:, :, 1]
    assert np.all(residual.autocorrelations[1, :, 1] > 0.5)  # every seed, not only the mean


@pytest.mark.slow
def test_shattering_over_depths_and_seeds():
    depths = [1, 4, 8, 16, 24, 50]
    plain = shattering(depths, residual=False, seeds=range(8))
    residual = shattering(depths, residual=True, seeds=range(8))
    assert np.all(np.abs(plain.lag1[depths.index(24):]) < 0.15)
    assert np.all(residual.lag1 > 0.6)
    # At depth 1 both gradients are one step at the grid's mean: the same correlation exactly.
    assert residual.lag1[0] == pytest.approx(plain.lag1[0])
    assert np.all(residual.lag1[1:] > plain.lag1[1:])


def test_plot_shattering(tmp_path):
    results = [shattering([1, 8], residual=r, seeds=(0,), n_points=64, width=32) for r in (False, True)]
    fig = plot_shattering(results)
    fig.savefig(tmp_path / "shattering.png")
    assert (tmp_path / "shattering.png").stat().st_size > 0
    summary = fig.axes[len(results[0].depths)]
    assert summary.get_xlabel() and summary.get_ylabel()
    assert [t.get_text() for t in summary.get_legend().get_texts()] == ["plain + BN", "residual + BN"]
