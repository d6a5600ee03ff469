"""Residual add: the gradient reaches both operands unchanged."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 1, 1, 1), (3, 5)])
def test_gradcheck_grid(rng, shape):
    report = check_op(F.add_forward, F.add_backward,
                      (rng.standard_normal(shape), rng.standard_normal(shape)), names=["da", "db"])
    assert report.ok, str(report)
    assert len(report.errors) == 2


@FUZZ
@given(shape=array_shapes(min_dims=1, max_dims=4, max_side=4), seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(shape, seed):
    rng = np.random.default_rng(seed)
    report = check_op(F.add_forward, F.add_backward, (rng.standard_normal(shape), rng.standard_normal(shape)))
    assert report.ok, str(report)


def test_gradient_passes_through_with_factor_one(rng):
    dy = rng.standard_normal((2, 3))
    da, db = F.add_backward(dy, F.add_forward(np.zeros((2, 3)), np.ones((2, 3)))[1])
    np.testing.assert_array_equal(da, dy)
    np.testing.assert_array_equal(db, dy)


def test_float32_in_float32_out(rng):
    a = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    y, cache = F.add_forward(a, a)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.add_backward(y, cache))


def test_mixed_precision_is_refused(rng):
    a = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="add: .*first=float32, second=float64"):
        F.add_forward(a.astype(np.float32), a)


def test_shape_mismatch_is_refused_not_broadcast(rng):
    with pytest.raises(ValueError, match=r"add: .*same shape, got \(2, 8, 4, 4\) and \(2, 4, 8, 8\)"):
        F.add_forward(rng.standard_normal((2, 8, 4, 4)), rng.standard_normal((2, 4, 8, 8)))
    with pytest.raises(ValueError, match="add:"):
        F.add_forward(rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((1, 3, 1, 1)))
