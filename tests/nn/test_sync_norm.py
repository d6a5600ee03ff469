"""SyncBatchNorm and convert_sync_batchnorm (tinyresnet/nn/sync_norm.py) and the functional pair
(tinyresnet/functional/sync_norm.py) on one rank, without MPI: a one-rank communicator makes them
plain batch norm.  Across ranks they are tested under mpiexec in tests/distributed/."""
import sys

import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet import models, nn


class _OneRank:
    """The one method of an mpi4py communicator the sync batch norm uses, for a single rank."""

    def Allreduce(self, send, receive):
        receive[...] = send


def test_functional_pair_on_one_rank_is_batchnorm(rng):
    x = rng.standard_normal((4, 3, 5, 5)) * 3 + 2
    gamma, beta, dy = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(x.shape)
    rm, rv, rm1, rv1 = np.zeros(3), np.ones(3), np.zeros(3), np.ones(3)
    y, cache = F.sync_batchnorm2d_forward(x, gamma, beta, rm, rv, 0.1, 1e-5, _OneRank())
    y1, cache1 = F.batchnorm2d_forward(x, gamma, beta, rm1, rv1, True, 0.1, 1e-5)
    np.testing.assert_allclose(y, y1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, rm1, rtol=1e-12)
    np.testing.assert_allclose(rv, rv1, rtol=1e-12)
    for a, b in zip(F.sync_batchnorm2d_backward(dy, cache), F.batchnorm2d_backward(dy, cache1)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_functional_forward_keeps_float32_and_refuses_bad_input(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    y, _ = F.sync_batchnorm2d_forward(x, None, None, None, None, 0.1, 1e-5, _OneRank())
    assert y.dtype == np.float32
    with pytest.raises(ValueError, match="sync_batchnorm2d: expected input of shape"):
        F.sync_batchnorm2d_forward(x, np.ones(4, np.float32), None, None, None, 0.1, 1e-5,
                                   _OneRank())
    with pytest.raises(ValueError, match="more than 1 value per channel in the global batch"):
        F.sync_batchnorm2d_forward(x[:1, :, :1, :1], None, None, None, None, 0.1, 1e-5,
                                   _OneRank())


def test_convert_replaces_every_batchnorm_and_keeps_parameters_and_state():
    model = models.get_model("cifar_resnet20", num_classes=10, in_channels=1)
    params = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    converted = nn.convert_sync_batchnorm(model, _OneRank())
    assert converted is model
    norms = [m for _, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    assert [id(p) for p in model.parameters()] == params  # an optimizer built before still works
    assert list(model.state_dict()) == keys  # checkpoints load either way
    assert model.layer1[0].bn1._qualname == "layer1.0.bn1"


@pytest.mark.parametrize("training", [True, False])
def test_module_on_one_rank_is_batchnorm2d(rng, training):
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    dy = rng.standard_normal(x.shape)
    plain = nn.BatchNorm2d(3, dtype=np.float64)
    plain.weight.data[:] = rng.standard_normal(3)
    plain.running_var[:] = 2.0
    sync = nn.convert_sync_batchnorm(nn.Sequential(plain), _OneRank())[0]
    reference = nn.BatchNorm2d(3, dtype=np.float64)
    reference.load_state_dict(plain.state_dict())
    sync.train(training), reference.train(training)
    np.testing.assert_allclose(sync(x), reference(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sync.backward(dy), reference.backward(dy), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sync.weight.grad, reference.weight.grad, rtol=1e-10)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(sync, name), getattr(reference, name), rtol=1e-12)


def test_without_mpi4py_the_error_says_how_to_install(monkeypatch):
    from tinyresnet import distributed

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    assert not distributed.mpi_available()
    with pytest.raises(RuntimeError, match=r"pip install 'tinyresnet\[mpi\]'"):
        distributed.world()
    with pytest.raises(RuntimeError, match="mpiexec"):
        nn.SyncBatchNorm(3)(np.ones((2, 3, 2, 2), np.float32))
