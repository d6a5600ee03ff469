r"""Lesion study (Veit et al. 2016): delete one block of a trained network and measure the damage.

Deleting block i of a ResNet removes its residual branch and keeps its shortcut, so the block
computes relu(s(x)) (post-activation; s(x) for a pre-activation block) instead of
relu(F(x) + s(x)).  Half of the 2^n paths pass through that branch, but the other half survive,
and for most blocks a ResNet's test accuracy barely moves (Veit et al. saw the exceptions at the
blocks that change resolution; in a small net the first block matters too).

A plain network has a single path: deleting a block (replacing it by the identity; possible only
where the block keeps the shape) cuts it, and accuracy falls to chance.  Blocks of a plain network
that change the shape cannot be deleted and get NaN.
"""
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from ..models import residual_blocks
from ..nn import no_grad
from ._instrument import patched, record_forward
from .landscape import evaluate

__all__ = ["delete_block", "Lesion", "lesion_study", "plot_lesion"]


@contextmanager
def delete_block(block):
    """Within the block: a block with a shortcut has its residual branch output zeros; a plain
    block is the identity (meaningful only where the block keeps its input's shape)."""
    if block.skip:
        def branch_forward(x):
            # Same shape and dtype as the sum's other operand, without running the branch.
            s = block.shortcut_forward(x)
            return get_array_module(s).zeros_like(s)

        with patched(block, branch_forward=branch_forward):
            yield block
    else:
        with patched(block, forward=lambda x: x):
            yield block


@dataclass
class Lesion:
    """Accuracy and loss after deleting each single block.

    Attributes
    ----------
    names : list of str, the residual blocks in depth order
    baseline_accuracy, baseline_loss : float, the intact model
    accuracy, loss : arrays (B,), with block i deleted (NaN where it cannot be)
    """

    names: list
    baseline_accuracy: float
    baseline_loss: float
    accuracy: np.ndarray
    loss: np.ndarray


def lesion_study(model, x, y, batch_size=256):
    """Evaluate (x, y) in eval mode with each residual block deleted in turn (model restored)."""
    blocks = list(residual_blocks(model))
    was_training = model.training
    model.eval()
    try:
        with no_grad(), record_forward(blocks) as shapes:
            model(x[:1])
        base_loss, base_acc = evaluate(model, x, y, batch_size)
        accuracy, loss = np.full(len(blocks), np.nan), np.full(len(blocks), np.nan)
        for i, (name, block) in enumerate(blocks):
            if not block.skip and shapes.inputs[name].shape != shapes.outputs[name].shape:
                continue  # a plain block that changes the shape has nothing to fall back on
            with delete_block(block):
                loss[i], accuracy[i] = evaluate(model, x, y, batch_size)
    finally:
        model.train(was_training)
    return Lesion([n for n, _ in blocks], base_acc, base_loss, accuracy, loss)


def plot_lesion(lesions):
    """Test accuracy after deleting each block; dashed lines: the intact models.

    ``lesions``: dict label -> Lesion.  Returns a Figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for label, lesion in lesions.items():
        blocks = np.arange(len(lesion.names))
        line, = ax.plot(blocks, lesion.accuracy, marker="o", label=f"{label}: one block deleted")
        ax.axhline(lesion.baseline_accuracy, color=line.get_color(), ls="--", lw=1,
                   label=f"{label}: intact")
    ax.set_xlabel("deleted residual block (input -> output)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("lesion study (Veit et al. 2016)", fontsize=10)
    ax.legend(fontsize=8)
    return fig
