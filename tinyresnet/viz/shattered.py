r"""Shattered gradients (Balduzzi et al. 2017): the input gradient of a deep plain net is white noise.

A toy network maps one number x to one number f(x) through ``depth`` hidden layers of ``width``
units with batch normalization.  Sweeping x over a grid and plotting df/dx shows the problem:

- plain:     h_l = ReLU(BN(W_l h_{l-1})), and df/dx decorrelates between neighbouring x as depth
  grows (the lag-1 autocorrelation falls like 2^{-L}), until it looks like noise;
- residual:  h_l = h_{l-1} + W_l ReLU(BN(h_{l-1})), and df/dx keeps its structure far deeper (the
  correlation falls only like 1/sqrt(L)).

Both start with an affine h_0 = w x + b (w, b ~ U(-1, 1), PyTorch's default for a 1-in layer)
and end with a 1-out linear read-out; the hidden W_l are He normal, without biases.  There is
deliberately no ReLU on h_0: it would leave units alive on only a few points at the edge of the
grid, which BN then scales up to unit variance, and their spikes dominate the gradient (with it,
2 of 16 residual nets of depth 50 had a negative lag-1 correlation; without it none comes near 0).
The whole grid is one batch: BN's statistics are taken from it in training
mode, then held fixed, so that each f(x_i) depends on x_i alone and one backward of ones gives every
df/dx_i at once.

Autocorrelation at lag k of a sequence g over the grid:

.. math::  \rho(k) = \frac{\sum_i (g_i - \bar g)(g_{i+k} - \bar g)}{\sum_i (g_i - \bar g)^2}
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..random import manual_seed

__all__ = [
    "toy_network", "input_gradient", "autocorrelation", "shattering", "Shattering",
    "plot_shattering",
]


class _BatchNorm1d(nn.BatchNorm2d):
    """BatchNorm over features (N, C): BatchNorm2d on (N, C, 1, 1)."""

    def forward(self, x):
        return super().forward(x[:, :, None, None])[:, :, 0, 0]

    def backward(self, dy):
        return super().backward(dy[:, :, None, None])[:, :, 0, 0]


class _ResidualLayer(nn.Module):
    """h + W ReLU(BN(h)): a one-layer pre-activation residual block."""

    def __init__(self, width, dtype):
        super().__init__()
        self.bn = _BatchNorm1d(width, momentum=None, dtype=dtype)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(width, width, bias=False, dtype=dtype)
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")

    def forward(self, h):
        return h + self.fc(self.relu(self.bn(h)))

    def backward(self, dy):
        # The skip copies dy to the input unchanged; the branch adds its own part.
        return dy + self.bn.backward(self.relu.backward(self.fc.backward(dy)))


def toy_network(depth, residual=False, width=200, dtype=np.float64):
    """The 1-in, 1-out network of Balduzzi et al.: ``depth`` hidden layers of ``width`` units.

    Returns an ``nn.Sequential`` taking x (N, 1) to f(x) (N, 1); BN uses ``momentum=None`` so that
    one training-mode forward sets its running statistics to that batch's.
    """
    if depth < 0 or width < 1:
        raise ValueError(f"toy_network: expected depth >= 0 and width >= 1, got {depth}, {width}")
    layers = [nn.Linear(1, width, dtype=dtype)]
    for _ in range(depth):
        if residual:
            layers.append(_ResidualLayer(width, dtype))
        else:
            fc = nn.Linear(width, width, bias=False, dtype=dtype)
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
            layers += [fc, _BatchNorm1d(width, momentum=None, dtype=dtype), nn.ReLU()]
    layers.append(nn.Linear(width, 1, dtype=dtype))
    return nn.Sequential(*layers)


def input_gradient(net, x):
    """df/dx at every point of a grid x (N,), with BN statistics taken from the grid and frozen.

    Returns g (N,) in float64.
    """
    x = np.asarray(x)[:, None]
    net.train()
    with nn.no_grad():
        net(x)
    net.eval()
    try:
        f = net(x)
        g = net.backward(np.ones_like(f))
    finally:
        net.train()
    return np.asarray(g[:, 0], dtype=np.float64)


def autocorrelation(g, max_lag=None):
    """rho(k) for k = 0 .. max_lag (default len(g) // 4) of a 1-D sequence.  rho(0) = 1."""
    g = np.asarray(g, dtype=np.float64) - np.mean(g)
    n = g.size
    max_lag = n // 4 if max_lag is None else max_lag
    if not 0 <= max_lag < n:
        raise ValueError(f"autocorrelation: expected 0 <= max_lag < {n}, got {max_lag}")
    energy = float(g @ g)
    if energy == 0.0:
        raise ValueError("autocorrelation: the sequence is constant; its correlation is undefined")
    return np.array([float(g[: n - k] @ g[k:]) / energy for k in range(max_lag + 1)])


@dataclass
class Shattering:
    """Results of :func:`shattering` for one architecture.

    Attributes
    ----------
    residual : bool
    depths : array (D,)
    x : array (N,), the input grid
    gradients : array (D, N), df/dx for the first seed at each depth
    autocorrelations : array (D, S, K+1), rho(0..K) for every depth and seed
    """

    residual: bool
    depths: np.ndarray
    x: np.ndarray
    gradients: np.ndarray
    autocorrelations: np.ndarray

    @property
    def lag1(self):
        """Lag-1 autocorrelation per depth, mean over seeds (D,)."""
        return self.autocorrelations[:, :, 1].mean(axis=1)

    @property
    def label(self):
        return "residual + BN" if self.residual else "plain + BN"


def shattering(depths, residual=False, seeds=(0, 1, 2), n_points=256, span=(-2.0, 2.0),
               width=200, max_lag=32):
    """Gradient over an input grid and its autocorrelation, for toy nets of each depth and seed.

    Each (depth, seed) network is built after ``tinyresnet.manual_seed(seed)``.
    """
    depths = np.asarray(depths, dtype=int)
    x = np.linspace(span[0], span[1], n_points)
    gradients = np.empty((len(depths), n_points))
    rho = np.empty((len(depths), len(seeds), max_lag + 1))
    for i, depth in enumerate(depths):
        for j, seed in enumerate(seeds):
            manual_seed(seed)
            g = input_gradient(toy_network(int(depth), residual, width), x)
            if j == 0:
                gradients[i] = g
            rho[i, j] = autocorrelation(g, max_lag)
    return Shattering(bool(residual), depths, x, gradients, rho)


def plot_shattering(results):
    """Gradient over the grid per depth (one row per architecture) and lag-1 autocorrelation vs depth.

    ``results``: a list of :class:`Shattering` (typically plain and residual, same depths).
    Returns a matplotlib Figure.
    """
    from matplotlib.figure import Figure

    results = list(results)
    n_depths = max(len(r.depths) for r in results)
    fig = Figure(figsize=(3.0 * (n_depths + 1), 2.6 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), n_depths + 1, squeeze=False)
    for row, r in zip(axes, results):
        for ax, depth, g in zip(row[:-1], r.depths, r.gradients):
            ax.plot(r.x, g, lw=0.8, label=f"{r.label}, depth {depth}")
            ax.set_title(f"{r.label}, depth {depth}", fontsize=9)
            ax.set_xlabel("input x")
            ax.set_ylabel("df/dx")
        for ax in row[len(r.depths):-1]:
            ax.set_visible(False)
    # The last column holds the summary, all architectures on one axis.
    summary = axes[0, -1]
    for r in results:
        lag1 = r.autocorrelations[:, :, 1]
        summary.errorbar(r.depths, lag1.mean(axis=1), yerr=lag1.std(axis=1), marker="o",
                         capsize=3, label=r.label)
    summary.axhline(0.0, color="grey", lw=0.6)
    summary.set_xlabel("depth (hidden layers)")
    summary.set_ylabel("lag-1 autocorrelation of df/dx")
    summary.set_title("shattering", fontsize=9)
    summary.legend(fontsize=8)
    for ax in axes[1:, -1]:
        ax.set_visible(False)
    return fig
