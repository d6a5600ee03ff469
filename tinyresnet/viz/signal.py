r"""Forward signal: how large the activations are at every block, plain versus residual.

Two measurements per model and batch:

- the standard deviation of every residual block's output;
- the standard deviation of every 3x3 conv's response after its BN and before the nonlinearity,
  Fig. 7 of He et al. 2015 (where the 3x3 conv is not followed by a BN, as in a pre-activation
  block's last conv, the conv's own output).

At initialisation with BN in training mode a plain block ends in ReLU(BN(.)) with BN's gamma = 1,
beta = 0, so its output is a rectified unit Gaussian whatever the depth:

.. math::  \mathrm{std}(\mathrm{ReLU}(z)) = \sqrt{\tfrac12 - \tfrac1{2\pi}} \approx 0.584,
           \quad z \sim N(0, 1)

while a residual block adds its branch to its input, so variances add and the output's standard
deviation grows with depth (within a stage; a projection shortcut renormalises it).
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..backend import to_numpy
from ..models import residual_blocks
from ._instrument import record_forward

__all__ = ["RECTIFIED_GAUSSIAN_STD", "ForwardSignal", "forward_signal", "plot_forward_signal"]

RECTIFIED_GAUSSIAN_STD = float(np.sqrt(0.5 - 1 / (2 * np.pi)))


def _std(a):
    return float(np.asarray(to_numpy(a), dtype=np.float64).std())


@dataclass
class ForwardSignal:
    """Standard deviations of one model's activations on one batch, in depth order.

    Attributes
    ----------
    block_names : list of str; block_std : array (B,), std of each residual block's output
    conv_names : list of str; conv_std : array (K,), std of each 3x3 conv's response after its BN
    """

    block_names: list
    block_std: np.ndarray
    conv_names: list
    conv_std: np.ndarray


def forward_signal(model, x):
    """Run x forward (model's current mode, no gradient kept) and measure the activations' std.

    In training mode BN's running statistics move as in any training-mode forward.
    """
    blocks = list(residual_blocks(model))
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]
    modules = dict(leaves)
    with nn.no_grad(), record_forward(blocks + leaves) as record:
        model(x)
    convs = [n for n, m in leaves
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and n in record.outputs]
    conv_std = []
    for conv in convs:
        response = record.outputs[conv]
        # The BN "after" a conv is one whose input is that very array, not merely the next call.
        for name in record.order[record.order.index(conv) + 1:]:
            if isinstance(modules.get(name), nn.BatchNorm2d) and record.inputs[name] is response:
                response = record.outputs[name]
                break
        conv_std.append(_std(response))
    block_std = np.array([_std(record.outputs[n]) for n, _ in blocks])
    return ForwardSignal([n for n, _ in blocks], block_std, convs, np.array(conv_std))


def plot_forward_signal(signals):
    """Std of block outputs (left) and of 3x3 conv responses after BN (right), per layer.

    ``signals``: dict label -> ForwardSignal.  Returns a Figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for label, s in signals.items():
        left.plot(np.arange(len(s.block_std)), s.block_std, marker=".", label=label)
        right.plot(np.arange(len(s.conv_std)), s.conv_std, marker=".", label=label)
    left.axhline(RECTIFIED_GAUSSIAN_STD, color="grey", ls=":", lw=1,
                 label="sqrt(1/2 - 1/(2 pi)): ReLU of N(0, 1)")
    left.set_xlabel("residual block (input -> output)")
    left.set_ylabel("std of block output")
    left.set_title("forward signal per block", fontsize=10)
    # At initialisation every response is 1 to 1e-5: no offset notation, and show the zero.
    right.ticklabel_format(axis="y", useOffset=False)
    top = max(float(np.max(s.conv_std)) for s in signals.values())
    right.set_ylim(0, 1.25 * top)
    right.set_xlabel("3x3 conv layer (input -> output)")
    right.set_ylabel("std of response after BN")
    right.set_title("3x3 layer responses (He et al. 2015, Fig. 7)", fontsize=10)
    for ax in (left, right):
        ax.legend(fontsize=8)
    return fig
