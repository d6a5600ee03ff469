"""Feature extraction: the stem and layer outputs of one forward, and a backward that takes
gradients arriving at several of them."""
import numpy as np
import pytest

from tinyresnet import models


def test_imagenet_features_and_strides(rng, skip_init):
    model = models.resnet18().eval()
    for p in model.parameters():  # skip_init leaves the memory as it was
        p.data[...] = rng.normal(0, 0.05, p.shape)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    features = model.forward_features(x)
    assert list(features) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert {k: v.shape for k, v in features.items()} == {
        "stem": (1, 64, 32, 32), "layer1": (1, 64, 16, 16), "layer2": (1, 128, 8, 8),
        "layer3": (1, 256, 4, 4), "layer4": (1, 512, 2, 2),
    }
    np.testing.assert_array_equal(model(x), model.forward_head(features["layer4"]))


def _features_and_grads(model, x, rng, names):
    features = model.forward_features(x)
    return features, {k: rng.standard_normal(features[k].shape) for k in names}


def test_backward_from_several_features_is_the_sum_of_each(rng):
    model = models.cifar_resnet20().double().train()
    x = rng.standard_normal((2, 3, 8, 8))
    _, grads = _features_and_grads(model, x, rng, ["stem", "layer2", "layer3"])
    model.zero_grad()
    dx_all = model.backward_features(grads)
    param_all = [p.grad.copy() for p in model.parameters() if p.grad is not None]
    dx_sum = 0
    param_sum = None
    for name, g in grads.items():
        model.forward_features(x)
        model.zero_grad()
        dx_sum = dx_sum + model.backward_features({name: g})
        grads_now = [p.grad if p.grad is not None else 0 for p in model.parameters()]
        param_sum = grads_now if param_sum is None else [a + b for a, b in zip(param_sum, grads_now)]
    np.testing.assert_allclose(dx_all, dx_sum, rtol=1e-10, atol=1e-12)
    for a, b in zip(param_all, param_sum):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_backward_features_against_a_numerical_derivative(rng):
    """d/dt of sum_k <f_k(x + t v), g_k> at t = 0, by central differences, against <dx, v>."""
    model = models.cifar_resnet20().double().eval()  # eval: no batch-statistics coupling
    x = rng.standard_normal((2, 3, 8, 8))
    v = rng.standard_normal(x.shape)
    _, grads = _features_and_grads(model, x, rng, ["layer1", "layer3"])
    dx = model.backward_features(grads)

    def objective(t):
        f = model.forward_features(x + t * v)
        return sum(float((f[k] * g).sum()) for k, g in grads.items())

    h = 1e-6
    numeric = (objective(h) - objective(-h)) / (2 * h)
    assert float((dx * v).sum()) == pytest.approx(numeric, rel=1e-6)


def test_backward_features_errors(rng):
    model = models.cifar_resnet20()
    with pytest.raises(RuntimeError, match="run forward_features"):
        model.backward_features({"layer3": np.ones((1, 64, 2, 2), dtype=np.float32)})
    features = model.forward_features(rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match="unknown feature 'layer4'.*stem, layer1, layer2, layer3"):
        model.backward_features({"layer4": features["layer3"]})
    with pytest.raises(ValueError, match="gradient for 'layer2' must have the feature's shape"):
        model.backward_features({"layer2": features["layer3"]})
    with pytest.raises(ValueError, match="no gradient given"):
        model.backward_features({})
