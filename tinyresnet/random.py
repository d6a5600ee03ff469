"""One seeded random generator for the whole package (weight init, dropout, data shuffling).

``tinyresnet.manual_seed(0)`` makes model construction and training repeat exactly, as
``torch.manual_seed`` does.
"""
import numpy as np

__all__ = ["manual_seed", "get_rng", "get_rng_state", "set_rng_state"]

_rng = np.random.default_rng()


def manual_seed(seed):
    """Reseed the package generator; returns it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng():
    """The package's numpy Generator."""
    return _rng


def get_rng_state():
    """A JSON-able snapshot of the generator state (for checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state):
    """Restore a snapshot made by get_rng_state."""
    _rng.bit_generator.state = state
