r"""ReLU: y = max(x, 0), dx = dy * [x > 0].

The gradient at exactly x = 0 is taken as 0, as PyTorch does.
"""
from ..backend import get_array_module
from ._validate import check_array
from .parallel import elementwise

__all__ = ["relu_forward", "relu_backward"]


def relu_forward(x):
    """Rectified linear unit.

    x : array of any shape -> y : array of the same shape; cache : the mask x > 0
    """
    # BEGIN SOLUTION relu_forward
    check_array(x, "relu")
    xp = get_array_module(x)
    # mask = x > 0 and y = x * mask, each pass split over the CPU's cores (parallel.py)
    mask = elementwise(xp.greater, x, 0, out=xp.empty_like(x, dtype=bool))
    return elementwise(xp.multiply, x, mask, out=xp.empty_like(x)), mask
    # END SOLUTION


def relu_backward(dy, cache):
    """dx = dy where the input was positive, 0 elsewhere."""
    # BEGIN SOLUTION relu_backward
    xp = get_array_module(dy)
    # dx takes the forward input's memory order (channel-major in a network), not dy's: a dy in
    # NCHW order (from a zero-padded shortcut, say) would otherwise spread NCHW copies upstream.
    return elementwise(xp.multiply, dy, cache, out=xp.empty_like(cache, dtype=dy.dtype))
    # END SOLUTION
