"""batchnorm2d: gradient checks in training and evaluation, running statistics, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, rel, torch_forward_backward

SHAPES = [
    pytest.param((2, 3, 4, 4), id="2x3x4x4"),
    pytest.param((1, 2, 3, 5), id="batch1"),
    pytest.param((4, 1, 1, 1), id="1x1-spatial"),
    pytest.param((2, 3, 1, 2), id="tiny"),
]


def _params(rng, C, dtype=np.float64):
    gamma = (rng.uniform(0.5, 1.5, C) * rng.choice([-1, 1], C)).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    running_mean = rng.standard_normal(C).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, C).astype(dtype)
    return gamma, beta, running_mean, running_var


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_training(rng, shape, affine):
    x = rng.standard_normal(shape) * 2 + 0.5
    gamma, beta, running_mean, running_var = _params(rng, shape[1])
    if not affine:
        gamma = beta = None
    report = check_op(
        F.batchnorm2d_forward, F.batchnorm2d_backward,
        (x, gamma, beta, running_mean, running_var, True), wrt=[0, 1, 2],
        names=["dx", "dgamma", "dbeta"],
    )
    assert report.ok, str(report)
    assert len(report.errors) == (3 if affine else 1)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_evaluation(rng, shape):
    x = rng.standard_normal(shape)
    gamma, beta, running_mean, running_var = _params(rng, shape[1])
    report = check_op(
        F.batchnorm2d_forward, F.batchnorm2d_backward,
        (x, gamma, beta, running_mean, running_var, False), wrt=[0, 1, 2],
        names=["dx", "dgamma", "dbeta"],
    )
    assert report.ok, str(report)


def test_gradcheck_without_running_stats_uses_batch_stats_in_eval(rng):
    """track_running_stats=False: batch statistics in both modes, so the full backward applies."""
    x = rng.standard_normal((2, 2, 3, 3))
    gamma, beta, _, _ = _params(rng, 2)
    report = check_op(F.batchnorm2d_forward, F.batchnorm2d_backward,
                      (x, gamma, beta, None, None, False), wrt=[0, 1, 2])
    assert report.ok, str(report)


@FUZZ
@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 4), W=st.integers(1, 4),
       training=st.booleans(), eps=st.sampled_from([1e-5, 1e-3]), seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(N, C, H, W, training, eps, seed):
    # two values per channel normalise to about -1 and +1 whatever x is: the input gradient is
    # then pure round-off (of order eps / var), so train on at least three
    if training and N * H * W < 3:
        N = 3
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    gamma, beta, running_mean, running_var = _params(rng, C)
    report = check_op(
        F.batchnorm2d_forward, F.batchnorm2d_backward,
        (x, gamma, beta, running_mean, running_var, training, 0.1, eps), wrt=[0, 1, 2],
    )
    assert report.ok, str(report)


def test_forward_normalizes_per_channel(rng):
    x = rng.standard_normal((3, 2, 4, 4)) * np.array([5.0, 0.1])[:, None, None] + 7
    gamma, beta = np.array([2.0, 0.5]), np.array([1.0, -1.0])
    y, _ = F.batchnorm2d_forward(x, gamma, beta, eps=0.0)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), np.abs(gamma), rtol=1e-12)


def test_running_stats_follow_pytorch_convention(rng):
    """momentum weights the new value; the stored variance is the unbiased one (M / (M - 1))."""
    x = rng.standard_normal((2, 3, 2, 2)) + 1
    running_mean, running_var = np.zeros(3), np.ones(3)
    F.batchnorm2d_forward(x, None, None, running_mean, running_var, True, momentum=0.25)
    np.testing.assert_allclose(running_mean, 0.25 * x.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(running_var, 0.75 + 0.25 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-14)


def test_evaluation_uses_running_stats_and_leaves_them(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    gamma, beta, running_mean, running_var = _params(rng, 3)
    before = running_mean.copy(), running_var.copy()
    y, _ = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, False, eps=1e-5)
    expected = (x - running_mean[:, None, None]) / np.sqrt(running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected * gamma[:, None, None] + beta[:, None, None], rtol=1e-12)
    np.testing.assert_array_equal(running_mean, before[0])
    np.testing.assert_array_equal(running_var, before[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_parity_over_several_steps(rng, dtype):
    """Three training steps (forward, every gradient, running stats after each), then evaluation."""
    torch = pytest.importorskip("torch")
    tol = PARITY_TOL[dtype]
    C = 3
    gamma, beta, running_mean, running_var = _params(rng, C, dtype)
    torch_mean, torch_var = torch.tensor(running_mean), torch.tensor(running_var)
    for step in range(3):
        x = (rng.standard_normal((2, C, 3, 4)) * (step + 1) + step).astype(dtype)
        y, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, True, 0.1, 1e-5)
        y_t, grads_t, dy = torch_forward_backward(
            lambda x, g, b: torch.nn.functional.batch_norm(
                x, torch_mean, torch_var, g, b, training=True, momentum=0.1, eps=1e-5),
            (x, gamma, beta), seed=step,
        )
        assert y.dtype == dtype
        assert rel(y, y_t) < tol
        for name, ours, theirs in zip(["dx", "dgamma", "dbeta"], F.batchnorm2d_backward(dy, cache), grads_t):
            assert ours.dtype == dtype, name
            assert rel(ours, theirs) < tol, (step, name)
        assert running_mean.dtype == running_var.dtype == dtype
        assert rel(running_mean, torch_mean.numpy()) < tol, step
        assert rel(running_var, torch_var.numpy()) < tol, step

    x = rng.standard_normal((2, C, 3, 4)).astype(dtype)
    y, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, False, 0.1, 1e-5)
    y_t, grads_t, dy = torch_forward_backward(
        lambda x, g, b: torch.nn.functional.batch_norm(
            x, torch_mean, torch_var, g, b, training=False, momentum=0.1, eps=1e-5),
        (x, gamma, beta),
    )
    assert rel(y, y_t) < tol
    for ours, theirs in zip(F.batchnorm2d_backward(dy, cache), grads_t):
        assert rel(ours, theirs) < tol


def test_float32_in_float32_out(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    params = [p.astype(np.float32) for p in _params(rng, 3)]
    for training in (True, False):
        y, cache = F.batchnorm2d_forward(x, *params, training=training)
        assert y.dtype == np.float32
        assert all(g.dtype == np.float32 for g in F.batchnorm2d_backward(np.ones_like(y), cache))
    assert params[2].dtype == params[3].dtype == np.float32


def test_mixed_precision_is_refused(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    gamma, beta, running_mean, running_var = _params(rng, 3)
    with pytest.raises(TypeError, match=r"batchnorm2d: .*input=float32, weight=float64"):
        F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var)


def test_wrong_channel_count(rng):
    gamma, beta, running_mean, running_var = _params(rng, 3)
    with pytest.raises(ValueError, match=r"batchnorm2d: expected input of shape \(N, 3, H, W\) to match weight of shape \(3,\), got \(2, 4, 3, 3\)"):
        F.batchnorm2d_forward(rng.standard_normal((2, 4, 3, 3)), gamma, beta, running_mean, running_var)


def test_single_value_per_channel_is_refused_in_training(rng):
    with pytest.raises(ValueError, match=r"batchnorm2d: expected more than 1 value per channel.*\(1, 3, 1, 1\)"):
        F.batchnorm2d_forward(rng.standard_normal((1, 3, 1, 1)), None, None)


def test_wrong_rank(rng):
    with pytest.raises(ValueError, match=r"batchnorm2d: expected a 4-D input.*got shape \(2, 3\)"):
        F.batchnorm2d_forward(rng.standard_normal((2, 3)), None, None)
