"""tinyresnet: a pure-NumPy ResNet whose every backward pass is written by hand.

    import tinyresnet as tr
    from tinyresnet import nn, functional as F, models, optim

The subpackages load on first use (``tr.nn``, ``from tinyresnet import models``; PEP 562), as
SciPy's do: ``import tinyresnet`` stays cheap, and ``python -m tinyresnet.assign check A1`` run in
a student's release folder starts even when an edited layer file does not import (a syntax error,
a loop at import time), so the checker can report it instead of dying before it runs.
"""
import importlib

from .backend import get_array_module, to_device, to_numpy
from .random import get_rng, manual_seed

__version__ = "0.1.0"

_SUBPACKAGES = ("backend", "functional", "gradcheck", "nn", "data", "optim", "interop", "models",
                "viz")

__all__ = [
    "backend", "functional", "gradcheck", "nn",
    "data", "optim",
    "interop", "models",
    "viz",
    "get_array_module", "to_device", "to_numpy", "manual_seed", "get_rng", "__version__",
]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
