r"""Inverted dropout: keep each element with probability 1 - p and scale it by 1/(1 - p), so the
expected output equals the input and evaluation needs no rescaling.  dx = dy * mask / (1 - p).
"""
from ..backend import get_array_module
from ._validate import check_array

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x, p=0.5, training=True, rng=None):
    """Parameters: x any shape; p drop probability in [0, 1); rng a numpy Generator (for NumPy input).

    Returns y, cache (the scaled mask, or None when it is the identity).
    """
    check_array(x, "dropout")
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x, None
    xp = get_array_module(x)
    # CuPy arrays draw on the device; NumPy ones from the given Generator (seeded runs repeat)
    source = rng if (rng is not None and xp.__name__ == "numpy") else xp.random
    mask = (source.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dy, cache):
    """dx = dy * mask (the identity when the forward kept everything)."""
    return dy if cache is None else dy * cache
