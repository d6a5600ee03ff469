"""Weight initialisation as PyTorch does it, drawn from the package generator (tinyresnet.random).

Each function fills a Parameter's ``.data`` in place (keeping its dtype and device) and returns it.
"""
import math

import numpy as np

from ..backend import get_array_module
from ..random import get_rng

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "kaiming_uniform_", "kaiming_normal_",
]


def _fill(param, values):
    xp = get_array_module(param.data)
    param.data = xp.asarray(values.astype(param.data.dtype))
    return param


def _fans(shape):
    """fan_in = in_channels * receptive field; fan_out = out_channels * receptive field."""
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, a=0.0):
    """The gain that keeps activations' variance through a layer followed by ``nonlinearity``."""
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a**2))
    raise ValueError(f"init: unsupported nonlinearity {nonlinearity!r}")


def uniform_(param, low=0.0, high=1.0):
    return _fill(param, get_rng().uniform(low, high, size=param.data.shape))


def normal_(param, mean=0.0, std=1.0):
    return _fill(param, get_rng().normal(mean, std, size=param.data.shape))


def constant_(param, value):
    return _fill(param, np.full(param.data.shape, value))


def zeros_(param):
    return constant_(param, 0.0)


def ones_(param):
    return constant_(param, 1.0)


def kaiming_uniform_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound), bound = gain * sqrt(3 / fan).  PyTorch's Conv2d and Linear default is
    a = sqrt(5), which works out to bound = 1 / sqrt(fan_in)."""
    fan_in, fan_out = _fans(param.data.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(param, -bound, bound)


def kaiming_normal_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std^2), std = gain / sqrt(fan) (He et al. 2015).  torchvision's ResNet uses
    mode='fan_out', nonlinearity='relu' for its convolutions."""
    fan_in, fan_out = _fans(param.data.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return normal_(param, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))


def default_bias_bound(weight_shape):
    """PyTorch's default bias range for Conv2d/Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = _fans(weight_shape)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
