"""cross_entropy with reduction and ignore_index: gradient checks, PyTorch parity, the default
path equal to softmax_cross_entropy, bad arguments."""
import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import PARITY_TOL, rel, torch_forward_backward

CASES = [
    # reduction, ignore_index, which labels to ignore, label_smoothing
    pytest.param("mean", -100, [], 0.0, id="mean"),
    pytest.param("sum", -100, [], 0.1, id="sum-smoothed"),
    pytest.param("none", -100, [], 0.0, id="none"),
    pytest.param("mean", -100, [1, 3], 0.0, id="mean-ignoring-2-of-5"),
    pytest.param("mean", 2, [0, 4], 0.2, id="mean-ignore-index-is-a-class-smoothed"),
    pytest.param("sum", -1, [2], 0.0, id="sum-ignoring"),
    pytest.param("none", -100, [0, 1], 0.3, id="none-ignoring-smoothed"),
]


def _inputs(rng, ignore_index, ignored, dtype=np.float64, N=5, K=4):
    logits = (rng.standard_normal((N, K)) * 2).astype(dtype)
    labels = rng.integers(0, K, N)
    if ignore_index in range(K):  # the ignored class must not appear among the others
        labels[labels == ignore_index] = (ignore_index + 1) % K
    labels[ignored] = ignore_index
    return logits, labels


@pytest.mark.parametrize("reduction, ignore_index, ignored, label_smoothing", CASES)
def test_gradcheck(rng, reduction, ignore_index, ignored, label_smoothing):
    logits, labels = _inputs(rng, ignore_index, ignored)
    report = check_op(F.cross_entropy_forward, F.cross_entropy_backward,
                      (logits, labels, label_smoothing, reduction, ignore_index), names=["dz"])
    assert report.ok, str(report)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction, ignore_index, ignored, label_smoothing", CASES)
def test_torch_parity(rng, dtype, reduction, ignore_index, ignored, label_smoothing):
    torch = pytest.importorskip("torch")
    logits, labels = _inputs(rng, ignore_index, ignored, dtype)
    loss, cache = F.cross_entropy_forward(logits, labels, label_smoothing, reduction, ignore_index)
    loss_t, (dz_t,), dloss = torch_forward_backward(
        lambda z: torch.nn.functional.cross_entropy(
            z, torch.from_numpy(labels), label_smoothing=label_smoothing, reduction=reduction,
            ignore_index=ignore_index), (logits,))
    dz = F.cross_entropy_backward(dloss, cache)
    assert loss.dtype == dz.dtype == dtype and np.shape(loss) == np.shape(loss_t)
    assert rel(loss, loss_t) < PARITY_TOL[dtype]
    assert rel(dz, dz_t) < PARITY_TOL[dtype]
    np.testing.assert_array_equal(dz[ignored], 0)


def test_default_is_the_plain_mean(rng):
    logits, labels = _inputs(rng, -100, [])
    loss, cache = F.cross_entropy_forward(logits, labels, 0.1)
    plain, plain_cache = F.softmax_cross_entropy_forward(logits, labels, 0.1)
    assert loss == plain
    np.testing.assert_array_equal(F.cross_entropy_backward(0.7, cache),
                                  F.softmax_cross_entropy_backward(0.7, plain_cache))


def test_mean_over_the_kept_samples_only(rng):
    logits, labels = _inputs(rng, -100, [0, 2])
    loss, _ = F.cross_entropy_forward(logits, labels)
    kept, _ = F.softmax_cross_entropy_forward(logits[[1, 3, 4]], labels[[1, 3, 4]])
    assert loss == pytest.approx(float(kept), rel=1e-15)
    per_sample, _ = F.cross_entropy_forward(logits, labels, reduction="none")
    assert per_sample[0] == per_sample[2] == 0


def test_all_ignored_mean_is_nan_as_torch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((2, 3))
    labels = np.array([-100, -100])
    loss, cache = F.cross_entropy_forward(logits, labels)
    assert np.isnan(loss)
    assert np.isnan(torch.nn.functional.cross_entropy(torch.from_numpy(logits),
                                                      torch.from_numpy(labels)).item())
    np.testing.assert_array_equal(F.cross_entropy_backward(1.0, cache), 0)  # torch's too


def test_bad_reduction_and_labels(rng):
    logits = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of .*'batchmean'"):
        F.cross_entropy_forward(logits, np.array([0, 1]), reduction="batchmean")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] .*\[3, 3\]"):
        F.cross_entropy_forward(logits, np.array([3, -100]))
    with pytest.raises(TypeError, match="expected integer class labels"):
        F.cross_entropy_forward(logits, np.array([0.0, 1.0]), reduction="sum")
