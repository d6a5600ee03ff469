r"""Residual addition y = a + b, the heart of a ResNet block (out = F(x) + shortcut(x)).

Backward: dL/da = dL/db = dy.  Addition copies its gradient to both operands unchanged, which is
why the identity path carries gradient to earlier layers with a factor of exactly 1.
"""
from ..backend import get_array_module
from ._validate import check_array, check_same_dtype
from .parallel import elementwise

__all__ = ["add_forward", "add_backward"]


def add_forward(a, b):
    """y = a + b for two arrays of the same shape.  Returns y, cache (None: nothing to keep)."""
    check_array(a, "add", name="first operand")
    check_array(b, "add", name="second operand")
    check_same_dtype("add", first=a, second=b)
    if a.shape != b.shape:
        raise ValueError(
            f"add: residual branch and shortcut must have the same shape, got {tuple(a.shape)} "
            f"and {tuple(b.shape)} (a strided or widening block needs a projection shortcut)"
        )
    xp = get_array_module(a, b)
    # The sum takes a's memory order (a + b would fall back to NCHW when b's differs, e.g. a
    # zero-padded shortcut): the branch output is channel-major, as the layers after it want.
    return elementwise(xp.add, a, b, out=xp.empty_like(a)), None  # on every core (parallel.py)


def add_backward(dy, cache):
    """Returns (da, db) = (dy, dy)."""
    return dy, dy
