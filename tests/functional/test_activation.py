"""relu: gradient check away from the kink, the kink's convention, PyTorch parity, dtypes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, away_from_zero, rel, torch_forward_backward


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 5), (7,), (1, 1, 1, 1)])
def test_gradcheck_grid(rng, shape):
    report = check_op(F.relu_forward, F.relu_backward, (away_from_zero(rng, shape),))
    assert report.ok, str(report)


@FUZZ
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=4), seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(shape, seed):
    x = away_from_zero(np.random.default_rng(seed), shape)
    report = check_op(F.relu_forward, F.relu_backward, (x,))
    assert report.ok, str(report)


def test_values_and_gradient_at_the_kink():
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    y, cache = F.relu_forward(x)
    np.testing.assert_array_equal(y, [0, 0, 0, 3])
    np.testing.assert_array_equal(F.relu_backward(np.ones(4), cache), [0, 0, 0, 1])  # as PyTorch


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_parity(rng, dtype):
    torch = pytest.importorskip("torch")
    x = away_from_zero(rng, (2, 3, 4, 4), dtype=dtype)
    y, cache = F.relu_forward(x)
    y_t, (dx_t,), dy = torch_forward_backward(torch.relu, (x,))
    dx = F.relu_backward(dy, cache)
    assert y.dtype == dx.dtype == dtype
    assert rel(y, y_t) < PARITY_TOL[dtype] and rel(dx, dx_t) < PARITY_TOL[dtype]


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="relu: expected a float32 or float64 input, got dtype int64"):
        F.relu_forward(np.arange(3))


def test_float32_in_float32_out(rng):
    x = away_from_zero(rng, (2, 3, 4), dtype=np.float32)
    y, cache = F.relu_forward(x)
    assert y.dtype == np.float32
    assert F.relu_backward(np.ones_like(y), cache).dtype == np.float32
