"""Shared inputs and strategies for the functional tests.

Gradient checks are only honest where the function is smooth around the input, so the helpers
keep inputs away from ReLU's kink at 0 and max pooling's ties (two candidates of a window within
the finite-difference step of each other).
"""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Hypothesis fuzz: few small examples, no deadline (the machine is shared and slow).  The package's
# autouse reseeding fixture is function-scoped and harmless to reuse between examples.
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def away_from_zero(rng, shape, margin=1e-3, dtype=np.float64):
    """Standard normal values pushed out of (-margin, margin): no element sits on ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin).astype(dtype)


def spaced(rng, shape, gap=0.1, dtype=np.float64):
    """Distinct values gap apart in random order: no window of a max pool holds a near tie."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * gap).reshape(shape).astype(dtype)


def rel(a, b):
    """Norm-wise relative difference of two arrays (0 when both are 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


@st.composite
def window_geometry(draw, max_kernel=4, max_extra=4, max_stride=3, max_padding=2, dilation=True,
                    half_kernel_padding=False):
    """A sliding-window configuration that fits: kernel (kh, kw), stride, padding, dilation and
    an input size (H, W) at least as large as the padded kernel span, non-square in general."""
    geometry = {"kernel_size": [], "stride": [], "padding": [], "dilation": [], "size": []}
    for _ in range(2):
        k = draw(st.integers(1, max_kernel))
        d = draw(st.integers(1, 2)) if dilation else 1
        span = d * (k - 1) + 1
        limit = span // 2 if half_kernel_padding else max_padding
        p = draw(st.integers(0, min(max_padding, limit)))
        size = max(1, span - 2 * p) + draw(st.integers(0, max_extra))
        geometry["kernel_size"].append(k)
        geometry["stride"].append(draw(st.integers(1, max_stride)))
        geometry["padding"].append(p)
        geometry["dilation"].append(d)
        geometry["size"].append(size)
    return {k: tuple(v) for k, v in geometry.items()}


def torch_forward_backward(fn, arrays, dy=None, seed=0):
    """Run a torch function on copies of ``arrays`` (None stays None) and backpropagate dy (drawn
    at random, of the output's shape and dtype, when not given).

    Returns (y, grads, dy) as NumPy arrays; grads[i] is None for an array that was None.
    """
    import torch

    tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*tensors)
    if dy is None:
        dy = np.random.default_rng(seed).standard_normal(tuple(y.shape)).astype(arrays[0].dtype)
    y.backward(torch.as_tensor(dy))
    grads = [None if t is None else t.grad.numpy() for t in tensors]
    return y.detach().numpy(), grads, dy


# Parity tolerances, norm-wise relative: float64 agrees to round-off, float32 to its precision.
PARITY_TOL = {np.float64: 1e-10, np.float32: 1e-4}
