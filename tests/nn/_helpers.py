"""Shared inputs for the module tests (kept apart from the ReLU kink and max-pool ties)."""
import numpy as np
from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Parity tolerances, norm-wise relative.
PARITY_TOL = {np.float64: 1e-10, np.float32: 1e-4}


def away_from_zero(rng, shape, margin=1e-3, dtype=np.float64):
    """Standard normal values pushed out of (-margin, margin)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin).astype(dtype)


def spaced(rng, shape, gap=0.1, dtype=np.float64):
    """Distinct values gap apart in random order."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * gap).reshape(shape).astype(dtype)


def rel(a, b):
    """Norm-wise relative difference of two arrays (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0
