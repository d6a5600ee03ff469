"""tinyresnet: a pure-NumPy ResNet whose every backward pass is written by hand.

    import tinyresnet as tr
    from tinyresnet import nn, functional as F, models, optim
"""
from . import backend, functional, gradcheck, nn
from . import data, optim
from . import interop, models
from . import viz  # analyses only: matplotlib is imported by the plot functions
from .backend import get_array_module, to_device, to_numpy
from .random import get_rng, manual_seed

__version__ = "0.1.0"

__all__ = [
    "backend", "functional", "gradcheck", "nn",
    "data", "optim",
    "interop", "models",
    "viz",
    "get_array_module", "to_device", "to_numpy", "manual_seed", "get_rng", "__version__",
]
