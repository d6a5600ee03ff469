"""Fixtures for the model tests."""
import pytest

from tinyresnet.nn import init


@pytest.fixture
def skip_init(monkeypatch):
    """Build models without drawing their initial weights (they stay uninitialised memory).

    For tests of structure only (parameter counts, names, shapes, MACs): drawing ResNet-152's 60M
    random weights twice (PyTorch's default init, then torchvision's) costs seconds.
    """
    for name in ("kaiming_normal_", "kaiming_uniform_", "uniform_", "normal_", "constant_"):
        monkeypatch.setattr(init, name, lambda param, *args, **kwargs: param)


@pytest.fixture
def one_torch_thread():
    """PyTorch spin-waits for its second thread on a busy 2-core machine: one is faster here
    (for the tests that compare with a torch rebuild)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
