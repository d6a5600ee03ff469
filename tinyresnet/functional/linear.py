r"""Fully connected layer and flatten.

Linear:  x (N, in), w (out, in), b (out,) -> y = x w^T + b  (N, out)

.. math::  dx = dy\,w, \qquad dw = dy^\top x, \qquad db = \textstyle\sum_n dy

Flatten: x (N, d1, d2, ...) -> (N, d1*d2*...); the backward is the reshape back.
"""
from ._validate import check_array, check_same_dtype
from .parallel import matmul  # a @ b on the ops' threads (parallel.py)

__all__ = ["linear_forward", "linear_backward", "flatten_forward", "flatten_backward"]


def linear_forward(x, w, b=None):
    """y = x @ w.T + b.

    Parameters
    ----------
    x : array (N, in_features)
    w : array (out_features, in_features)
    b : array (out_features,) or None

    Returns y : array (N, out_features), cache : (x, w, has_bias)
    """
    check_array(x, "linear", ndim=2)
    check_array(w, "linear", name="weight", ndim=2)
    check_same_dtype("linear", input=x, weight=w, bias=b)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"linear: expected input of shape (N, {w.shape[1]}), got {tuple(x.shape)}"
        )
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({w.shape[0]},), got {tuple(b.shape)}")
    # BEGIN SOLUTION linear_forward
    y = matmul(x, w.T)
    if b is not None:
        y += b
    return y, (x, w, b is not None)
    # END SOLUTION


def linear_backward(dy, cache):
    """Returns dx (N, in), dw (out, in), db (out,) or None."""
    # BEGIN SOLUTION linear_backward
    x, w, has_bias = cache
    return matmul(dy, w), matmul(dy.T, x), (dy.sum(axis=0) if has_bias else None)
    # END SOLUTION


def flatten_forward(x, start_dim=1):
    """Collapse every dimension from start_dim on: (N, C, H, W) -> (N, C*H*W) for start_dim=1."""
    check_array(x, "flatten", floating=False)
    return x.reshape(x.shape[:start_dim] + (-1,)), x.shape


def flatten_backward(dy, cache):
    """Reshape the gradient back to the input's shape."""
    return dy.reshape(cache)
