"""CrossEntropyLoss: the module around softmax cross-entropy (float loss, backward to the logits)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import nn
from tinyresnet.gradcheck import numerical_gradient, rel_error

from ._helpers import FUZZ, PARITY_TOL, rel


def _gradcheck(loss_fn, logits, labels):
    loss_fn(logits, labels)
    analytic = loss_fn.backward()
    numeric = numerical_gradient(lambda z: loss_fn(z, labels), logits)
    return rel_error(analytic, numeric, "logits")


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("N, K", [(1, 3), (4, 10)])
def test_gradcheck_grid(rng, N, K, label_smoothing):
    logits = rng.standard_normal((N, K)) * 3
    error = _gradcheck(nn.CrossEntropyLoss(label_smoothing), logits, rng.integers(0, K, N))
    assert error.passed(1e-7), str(error)


@FUZZ
@given(N=st.integers(1, 4), K=st.integers(2, 8), label_smoothing=st.floats(0, 1),
       seed=st.integers(0, 2**32 - 1))
def test_gradcheck_fuzz(N, K, label_smoothing, seed):
    rng = np.random.default_rng(seed)
    error = _gradcheck(nn.CrossEntropyLoss(label_smoothing), rng.standard_normal((N, K)) * 3,
                       rng.integers(0, K, N))
    assert error.passed(1e-7), str(error)


def test_returns_a_python_float_and_scales_backward(rng):
    loss_fn = nn.CrossEntropyLoss()
    logits, labels = rng.standard_normal((3, 4)), np.array([0, 1, 3])
    loss = loss_fn(logits, labels)
    assert type(loss) is float
    once = loss_fn.backward()
    loss_fn(logits, labels)
    np.testing.assert_allclose(loss_fn.backward(2.5), 2.5 * once, rtol=1e-15)
    assert once.shape == logits.shape


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_torch_parity(rng, dtype, label_smoothing):
    torch = pytest.importorskip("torch")
    logits, labels = (rng.standard_normal((6, 5)) * 2).astype(dtype), rng.integers(0, 5, 6)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    loss = loss_fn(logits, labels)
    dlogits = loss_fn.backward()
    z = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)(z, torch.from_numpy(labels))
    loss_t.backward()
    assert dlogits.dtype == dtype
    assert rel(loss, loss_t.item()) < PARITY_TOL[dtype]
    assert rel(dlogits, z.grad.numpy()) < PARITY_TOL[dtype]


def test_backward_needs_a_forward(rng):
    loss_fn = nn.CrossEntropyLoss()
    with pytest.raises(RuntimeError, match="CrossEntropyLoss: backward called without a forward"):
        loss_fn.backward()


def test_repr():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.CrossEntropyLoss(0.1)) == "CrossEntropyLoss(label_smoothing=0.1)"


def test_float32_in_float32_out(rng):
    logits = rng.standard_normal((3, 4)).astype(np.float32)
    loss_fn = nn.CrossEntropyLoss(0.1)
    assert type(loss_fn(logits, np.array([0, 1, 3]))) is float
    assert loss_fn.backward().dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_reduction_and_ignore_index_match_torch(rng, reduction):
    torch = pytest.importorskip("torch")
    logits, labels = rng.standard_normal((4, 5)), np.array([1, -1, 4, 0])
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1, reduction=reduction, ignore_index=-1)
    loss = loss_fn(logits, labels)
    dloss = rng.standard_normal(4) if reduction == "none" else 1.0
    dlogits = loss_fn.backward(dloss)
    z = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.CrossEntropyLoss(label_smoothing=0.1, reduction=reduction,
                                       ignore_index=-1)(z, torch.from_numpy(labels))
    loss_t.backward(torch.as_tensor(dloss, dtype=torch.float64))
    assert type(loss) is (np.ndarray if reduction == "none" else float)
    assert rel(loss, loss_t.detach().numpy()) < 1e-12
    assert rel(dlogits, z.grad.numpy()) < 1e-12
    assert "ignore_index=-1" in repr(loss_fn)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be 'mean', 'sum' or"):
        nn.CrossEntropyLoss(reduction="avg")
