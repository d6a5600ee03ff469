"""Inverted dropout: a fixed mask is a linear map (gradient-checked), the identity in eval and at
p = 0, unbiased in expectation."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ


def _with_fixed_mask(p, seed):
    """dropout_forward that draws the same mask on every call (a fresh generator each time), so
    finite differences see one smooth function."""
    return lambda x: F.dropout_forward(x, p, True, np.random.default_rng(seed))


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 6)])
def test_gradcheck_grid(rng, shape, p):
    report = check_op(_with_fixed_mask(p, 7), F.dropout_backward, (rng.standard_normal(shape),))
    assert report.ok, str(report)


@FUZZ
@given(p=st.floats(0, 0.95), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
       seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(p, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    report = check_op(_with_fixed_mask(p, seed), F.dropout_backward, (x,))
    assert report.ok, str(report)


def test_kept_elements_are_scaled_and_the_rest_zeroed(rng):
    x = rng.uniform(1, 2, (4, 50))
    y, mask = F.dropout_forward(x, 0.25, True, np.random.default_rng(0))
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
    np.testing.assert_array_equal(F.dropout_backward(np.ones_like(x), mask), kept / 0.75)


def test_expectation_is_the_input():
    x = np.ones(200_000)
    y, _ = F.dropout_forward(x, 0.4, True, np.random.default_rng(1))
    assert abs((y == 0).mean() - 0.4) < 0.01  # ~9 standard deviations of the drop fraction
    assert abs(y.mean() - 1) < 0.02


def test_same_generator_seed_same_mask(rng):
    x = rng.standard_normal((3, 8))
    a, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    b, _ = F.dropout_forward(x, 0.5, True, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("p, training", [(0.5, False), (0.0, True)])
def test_identity_in_eval_and_at_p_zero(rng, p, training):
    x = rng.standard_normal((2, 3))
    y, cache = F.dropout_forward(x, p, training, np.random.default_rng(0))
    np.testing.assert_array_equal(y, x)
    dy = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(F.dropout_backward(dy, cache), dy)


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y, mask = F.dropout_forward(x, 0.5, True, np.random.default_rng(0))
    assert y.dtype == np.float32
    assert F.dropout_backward(np.ones_like(y), mask).dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_bad_probability_is_refused(rng, p):
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\)"):
        F.dropout_forward(rng.standard_normal(3), p)
