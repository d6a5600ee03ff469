"""softmax cross-entropy: gradient checks, stability, PyTorch parity with label smoothing, bad labels."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, rel, torch_forward_backward


def _inputs(rng, N, K, dtype=np.float64, scale=2.0):
    return (rng.standard_normal((N, K)) * scale).astype(dtype), rng.integers(0, K, N)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("N, K", [(1, 2), (3, 5), (4, 10)])
def test_gradcheck_grid(rng, N, K, label_smoothing):
    logits, labels = _inputs(rng, N, K)
    report = check_op(F.softmax_cross_entropy_forward, F.softmax_cross_entropy_backward,
                      (logits, labels, label_smoothing), names=["dlogits"])
    assert report.ok, str(report)
    assert len(report.errors) == 1


@FUZZ
@given(N=st.integers(1, 4), K=st.integers(1, 6), label_smoothing=st.floats(0, 1),
       scale=st.floats(0.1, 10), seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(N, K, label_smoothing, scale, seed):
    logits, labels = _inputs(np.random.default_rng(seed), N, K, scale=scale)
    report = check_op(F.softmax_cross_entropy_forward, F.softmax_cross_entropy_backward,
                      (logits, labels, label_smoothing))
    assert report.ok, str(report)


def test_value_on_a_hand_example():
    """Uniform logits over K classes cost log K; a confident right answer costs about 0."""
    loss, _ = F.softmax_cross_entropy_forward(np.zeros((2, 4)), np.array([0, 3]))
    assert loss == pytest.approx(np.log(4), rel=1e-15)
    loss, _ = F.softmax_cross_entropy_forward(np.array([[50.0, 0.0]]), np.array([0]))
    assert 0 <= loss < 1e-20


def test_large_logits_stay_finite(rng):
    """exp(1000) overflows; the log-sum-exp shift keeps the loss and its gradient exact."""
    logits = np.array([[1000.0, 999.0, -1000.0], [-5e3, 5e3, 0.0]])
    loss, cache = F.softmax_cross_entropy_forward(logits, np.array([1, 1]))
    assert loss == pytest.approx((np.log1p(np.exp(-1.0)) + 1.0) / 2, rel=1e-12)
    grad = F.softmax_cross_entropy_backward(1.0, cache)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-15)  # probabilities minus targets


def test_log_softmax_rows_normalise(rng):
    z = rng.standard_normal((3, 7)) * 30
    np.testing.assert_allclose(np.exp(F.log_softmax(z)).sum(axis=1), 1, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_torch_parity(rng, dtype, label_smoothing):
    torch = pytest.importorskip("torch")
    logits, labels = _inputs(rng, 5, 7, dtype)
    loss, cache = F.softmax_cross_entropy_forward(logits, labels, label_smoothing)
    loss_t, (dlogits_t,), dloss = torch_forward_backward(
        lambda z: torch.nn.functional.cross_entropy(
            z, torch.from_numpy(labels), label_smoothing=label_smoothing), (logits,))
    dlogits = F.softmax_cross_entropy_backward(dloss, cache)
    assert loss.dtype == dlogits.dtype == dtype
    assert rel(loss, loss_t) < PARITY_TOL[dtype]
    assert rel(dlogits, dlogits_t) < PARITY_TOL[dtype]
    if dtype == np.float64:
        lsm_t = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
        assert rel(F.log_softmax(logits), lsm_t) < 1e-12


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64, np.uint8])
def test_float32_in_float32_out(rng, label_dtype):
    logits, labels = _inputs(rng, 3, 4, np.float32)
    loss, cache = F.softmax_cross_entropy_forward(logits, labels.astype(label_dtype), 0.1)
    assert loss.dtype == np.float32
    assert F.softmax_cross_entropy_backward(np.float64(1.0), cache).dtype == np.float32


def test_float_labels_are_refused(rng):
    logits, labels = _inputs(rng, 3, 4)
    with pytest.raises(TypeError, match="cross_entropy: expected integer class labels, got float64"):
        F.softmax_cross_entropy_forward(logits, labels.astype(np.float64))


def test_list_labels_are_refused(rng):
    logits, _ = _inputs(rng, 2, 4)
    with pytest.raises(TypeError, match="cross_entropy: expected integer class labels, got list"):
        F.softmax_cross_entropy_forward(logits, [0, 1])


@pytest.mark.parametrize("bad", [-1, 4])
def test_labels_out_of_range_are_refused(rng, bad):
    logits, labels = _inputs(rng, 3, 4)
    labels[1] = bad
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 3\] for 4 classes"):
        F.softmax_cross_entropy_forward(logits, labels)


def test_wrong_label_shape_is_refused(rng):
    logits, labels = _inputs(rng, 3, 4)
    with pytest.raises(ValueError, match=r"cross_entropy: expected labels of shape \(3,\) for logits \(3, 4\), got \(3, 1\)"):
        F.softmax_cross_entropy_forward(logits, labels[:, None])


def test_wrong_logits_rank_is_refused(rng):
    with pytest.raises(ValueError, match=r"cross_entropy: expected a 2-D logits .*got shape \(3, 4, 1, 1\)"):
        F.softmax_cross_entropy_forward(rng.standard_normal((3, 4, 1, 1)), np.zeros(3, dtype=int))


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.5])
def test_label_smoothing_out_of_range_is_refused(rng, label_smoothing):
    logits, labels = _inputs(rng, 3, 4)
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must be in"):
        F.softmax_cross_entropy_forward(logits, labels, label_smoothing)
