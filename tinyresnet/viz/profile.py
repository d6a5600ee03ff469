r"""Per-layer gradient profile: how large the gradient is at every layer, input to output.

For one batch, the norm of every weight gradient ||dL/dW_l|| and of every activation gradient
||dL/dy_l|| (y_l the output of weight layer l), in depth order.  On a log scale a plain deep net
with batch normalisation shows its gradient growing geometrically toward the input (each
conv-BN-ReLU multiplies the backward signal's norm by a factor above 1 at He initialisation), while
a ResNet's stays within a decade or so: the identity paths add a copy of the output gradient to
every block's input instead of multiplying through every layer.
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ._instrument import norm, record_backward

__all__ = ["GradientProfile", "gradient_profile", "weight_layers", "plot_gradient_profile"]


def weight_layers(model):
    """(name, module) for every Conv2d and Linear of a model, in definition (= depth) order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _on_shortcut(name):
    return "downsample" in name.split(".") or "shortcut" in name.split(".")


@dataclass
class GradientProfile:
    """Gradient norms of one model on one batch, one entry per weight layer in depth order.

    Attributes
    ----------
    names : list of str, the weight layers' qualified names
    weight_grad_norms : array (L,), ||dL/dW||
    activation_grad_norms : array (L,), ||dL/dy|| for y the layer's output
    on_shortcut : array of bool (L,), True for projection shortcuts (``downsample``)
    is_conv : array of bool (L,), True for Conv2d, False for Linear
    loss : float, the loss of the batch
    """

    names: list
    weight_grad_norms: np.ndarray
    activation_grad_norms: np.ndarray
    on_shortcut: np.ndarray
    is_conv: np.ndarray
    loss: float

    @property
    def main_path(self):
        """Indices of the layers on the main path: every conv and linear but the shortcuts."""
        return np.flatnonzero(~self.on_shortcut)

    def first_last_ratio(self, convs_only=True):
        r"""log10(||dL/dW_first|| / ||dL/dW_last||) over the main path (shortcuts left out).

        With ``convs_only`` (default) the first and last convolutions, leaving out the final
        linear classifier.  Above 0 the gradient grows toward the input.
        """
        idx = [i for i in self.main_path if self.is_conv[i] or not convs_only]
        if len(idx) < 2:
            raise ValueError(
                f"first_last_ratio: need two weight layers on the main path, got {len(idx)}"
            )
        return float(np.log10(self.weight_grad_norms[idx[0]] / self.weight_grad_norms[idx[-1]]))


def gradient_profile(model, x, y):
    """One forward and backward of (x, y) with cross-entropy, in the model's current mode.

    Parameter gradients are left as the backward wrote them (zeroed first).

    Returns
    -------
    GradientProfile
    """
    layers = weight_layers(model)
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    with record_backward(layers) as records:
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    return GradientProfile(
        names=[name for name, _ in layers],
        weight_grad_norms=np.array([norm(m.weight.grad) for _, m in layers]),
        activation_grad_norms=np.array([norm(records[name]["dy"]) for name, _ in layers]),
        on_shortcut=np.array([_on_shortcut(name) for name, _ in layers]),
        is_conv=np.array([isinstance(m, nn.Conv2d) for _, m in layers]),
        loss=float(loss),
    )


def plot_gradient_profile(panels, title="gradient norm per layer"):
    """Weight-gradient (top) and activation-gradient (bottom) norms per layer, log scale.

    ``panels``: dict panel title -> dict label -> GradientProfile (e.g. one panel per depth, plain
    and residual on each), or a single dict label -> GradientProfile.  Shortcut projections are
    left out, so that the x axis is the layer index along the main path.  Returns a Figure.
    """
    from matplotlib.figure import Figure

    if all(isinstance(v, GradientProfile) for v in panels.values()):
        panels = {title: panels}
    fig = Figure(figsize=(4.6 * len(panels), 6), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, sharey="row")
    for col, (panel_title, profiles) in enumerate(panels.items()):
        top, bottom = axes[0, col], axes[1, col]
        for label, p in profiles.items():
            idx = p.main_path
            line, = top.plot(np.arange(len(idx)), p.weight_grad_norms[idx], marker=".", label=label)
            bottom.plot(np.arange(len(idx)), p.activation_grad_norms[idx], marker=".",
                        color=line.get_color(), label=label)
        top.set_title(panel_title, fontsize=10)
        for ax, what in ((top, "||dL/dW||"), (bottom, "||dL/d output||")):
            ax.set_yscale("log")
            ax.set_xlabel("layer (input -> output)")
            ax.set_ylabel(what)
            ax.legend(fontsize=8)
    return fig
