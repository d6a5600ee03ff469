"""Watching and rerouting a model from the outside, without editing its classes.

A module's ``forward`` and ``backward`` are looked up on the instance first, so assigning a function
to ``module.forward`` (as ``object.__setattr__``, past Module's registration) overrides the class
method for that one module; deleting the instance attribute restores it.  Every analysis in
``viz`` uses this instead of hooks in the core.
"""
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy

__all__ = []

_MISSING = object()


@contextmanager
def patched(module, **methods):
    """Replace methods (``forward=fn``, ``backward=fn``) of one module instance in a ``with`` block.

    Patches nest: leaving the block restores whatever the instance held before (an outer patch,
    or nothing, so the class method shows through again).
    """
    saved = {name: module.__dict__.get(name, _MISSING) for name in methods}
    for name, fn in methods.items():
        object.__setattr__(module, name, fn)
    try:
        yield module
    finally:
        for name, old in saved.items():
            if old is _MISSING:
                module.__dict__.pop(name, None)
            else:
                object.__setattr__(module, name, old)


@contextmanager
def record_backward(named_modules):
    """Record, for each (name, module), the gradient arriving at its output and leaving its input.

    Yields a dict name -> {"dy": array, "dx": array}, filled as ``backward`` runs (the arrays are
    the live ones the model passes along; read them before the next backward).
    """
    records = {}
    with ExitStack() as stack:
        for name, module in named_modules:
            backward = _recording_backward(module, name, records)
            stack.enter_context(patched(module, backward=backward))
        yield records


def _recording_backward(module, name, records):
    original = module.backward

    def backward(dy):
        dx = original(dy)
        records[name] = {"dy": dy, "dx": dx}
        return dx

    return backward


@contextmanager
def record_forward(named_modules):
    """Record, for each (name, module), its first input and its output, and the call order.

    Yields a ``ForwardRecord`` with ``inputs`` and ``outputs`` (dicts name -> array) and
    ``order`` (names in call order; a module called twice appears twice, its last call is kept).
    """
    record = ForwardRecord({}, {}, [])
    with ExitStack() as stack:
        for name, module in named_modules:
            stack.enter_context(patched(module, forward=_recording_forward(module, name, record)))
        yield record


@dataclass
class ForwardRecord:
    inputs: dict
    outputs: dict
    order: list


def _recording_forward(module, name, record):
    original = module.forward

    def forward(x, *args, **kwargs):
        y = original(x, *args, **kwargs)
        record.inputs[name], record.outputs[name] = x, y
        record.order.append(name)
        return y

    return forward


def norm(a):
    """The Euclidean norm of an array (NumPy or CuPy) as a Python float, computed in float64."""
    return float(np.linalg.norm(np.asarray(to_numpy(a), dtype=np.float64).ravel()))
