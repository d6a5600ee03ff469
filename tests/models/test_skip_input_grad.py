"""nn.skip_input_grad: the first convolution stops computing dL/d(data), nothing else changes."""
import numpy as np
import pytest

from tinyresnet import backend, models, nn


@pytest.fixture
def float64():
    previous = backend.default_dtype()
    backend.set_default_dtype(np.float64)
    yield
    backend.set_default_dtype(previous)


@pytest.mark.parametrize("name, size", [("cifar_resnet20", 8), ("resnet18", 32)])
def test_the_parameter_gradients_are_unchanged_and_backward_returns_none(rng, float64, name, size):
    model = models.get_model(name, num_classes=3)
    x = rng.standard_normal((2, 3, size, size))
    dy = rng.standard_normal((2, 3))
    model(x)
    dx = model.backward(dy)
    grads = {k: p.grad.copy() for k, p in model.named_parameters()}

    assert nn.skip_input_grad(model) is False  # it computed the input gradient before
    stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert stem.input_grad is False and "input_grad=False" in repr(stem)
    model.zero_grad()
    model(x)
    assert model.backward(dy) is None
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[k], rtol=1e-12, atol=1e-12, err_msg=k)

    assert nn.skip_input_grad(model, False) is True
    model(x)
    np.testing.assert_array_equal(model.backward(dy), dx)


def test_a_model_without_convolutions_has_nothing_to_skip():
    assert nn.skip_input_grad(nn.Sequential(nn.Flatten(), nn.Linear(4, 2))) is None
