"""linear and flatten: gradient checks, PyTorch parity, dtypes and bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, rel, torch_forward_backward


def _inputs(rng, N, fan_in, fan_out, bias, dtype=np.float64):
    x = rng.standard_normal((N, fan_in)).astype(dtype)
    w = rng.standard_normal((fan_out, fan_in)).astype(dtype)
    return x, w, (rng.standard_normal(fan_out).astype(dtype) if bias else None)


@pytest.mark.parametrize("N, fan_in, fan_out, bias", [(2, 5, 3, True), (1, 1, 1, True), (3, 4, 2, False)])
def test_linear_gradcheck_grid(rng, N, fan_in, fan_out, bias):
    report = check_op(F.linear_forward, F.linear_backward, _inputs(rng, N, fan_in, fan_out, bias),
                      names=["dx", "dw", "db"])
    assert report.ok, str(report)
    assert len(report.errors) == (3 if bias else 2)


@FUZZ
@given(N=st.integers(1, 3), fan_in=st.integers(1, 6), fan_out=st.integers(1, 4), bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_linear_gradcheck_fuzz(N, fan_in, fan_out, bias, seed):
    args = _inputs(np.random.default_rng(seed), N, fan_in, fan_out, bias)
    report = check_op(F.linear_forward, F.linear_backward, args)
    assert report.ok, str(report)


@pytest.mark.parametrize("shape, start_dim", [((2, 3, 2, 2), 1), ((1, 4, 1, 1), 1), ((2, 3, 4), 2)])
def test_flatten_gradcheck_and_shape(rng, shape, start_dim):
    x = rng.standard_normal(shape)
    y, _ = F.flatten_forward(x, start_dim)
    assert y.shape == shape[:start_dim] + (int(np.prod(shape[start_dim:])),)
    report = check_op(F.flatten_forward, F.flatten_backward, (x, start_dim))
    assert report.ok, str(report)


@FUZZ
@given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=4).map(tuple), seed=st.integers(0, 2**32 - 1))
def test_flatten_gradcheck_fuzz(shape, seed):
    report = check_op(F.flatten_forward, F.flatten_backward,
                      (np.random.default_rng(seed).standard_normal(shape),))
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_torch_parity(rng, dtype, bias):
    torch = pytest.importorskip("torch")
    x, w, b = _inputs(rng, 3, 6, 4, bias, dtype)
    y, cache = F.linear_forward(x, w, b)
    y_t, grads_t, dy = torch_forward_backward(torch.nn.functional.linear, (x, w, b))
    assert y.dtype == dtype and rel(y, y_t) < PARITY_TOL[dtype]
    for name, ours, theirs in zip(["dx", "dw", "db"], F.linear_backward(dy, cache), grads_t):
        if theirs is None:
            assert ours is None
            continue
        assert ours.dtype == dtype, name
        assert rel(ours, theirs) < PARITY_TOL[dtype], name


def test_float32_in_float32_out(rng):
    x, w, b = _inputs(rng, 2, 3, 4, True, np.float32)
    y, cache = F.linear_forward(x, w, b)
    assert y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.linear_backward(np.ones_like(y), cache))
    z, cache = F.flatten_forward(rng.standard_normal((2, 3, 2)).astype(np.float32))
    assert z.dtype == F.flatten_backward(z, cache).dtype == np.float32


def test_mixed_precision_is_refused(rng):
    x, w, b = _inputs(rng, 2, 3, 4, True)
    with pytest.raises(TypeError, match="linear: .*input=float32, weight=float64, bias=float64"):
        F.linear_forward(x.astype(np.float32), w, b)


def test_wrong_feature_count(rng):
    x, w, b = _inputs(rng, 2, 3, 4, True)
    with pytest.raises(ValueError, match=r"linear: expected input of shape \(N, 3\), got \(2, 5\)"):
        F.linear_forward(rng.standard_normal((2, 5)), w, b)


def test_wrong_rank(rng):
    x, w, b = _inputs(rng, 2, 3, 4, True)
    with pytest.raises(ValueError, match=r"linear: expected a 2-D input \(N, features\), got shape \(2, 3, 1, 1\)"):
        F.linear_forward(x.reshape(2, 3, 1, 1), w, b)


def test_wrong_bias_shape(rng):
    x, w, _ = _inputs(rng, 2, 3, 4, False)
    with pytest.raises(ValueError, match=r"linear: expected bias of shape \(4,\), got \(3,\)"):
        F.linear_forward(x, w, np.zeros(3))
