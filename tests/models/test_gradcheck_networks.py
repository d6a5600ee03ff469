"""Whole-network gradient checks: the directional derivative along one random direction over the
input and every parameter (tinyresnet.gradcheck.check_direction), float64, BN in training mode.

The steps are small on purpose.  The direction has unit-variance entries for every parameter,
far larger than the weights themselves (std ~ 0.02 to 0.1), so in an ImageNet ResNet a step of
1e-6 moves a few of the ~10^5 ReLU inputs across zero; a crossing in layer3 or layer4, where BN
normalises only a few values per channel, costs up to 1e-2 in the difference quotient.  The
central difference is only valid when no kink lies within the step, so the ImageNet nets try
h = 1e-9 and, should a crossing spoil it, 1e-10 (10 times less likely to meet one; round-off
there is still below 5e-7 relative, their directional derivative being large).  The CIFAR nets'
derivative is ~0.1, too small for round-off at those steps, and their few units allow 1e-7.
A wrong backward fails at any step (test_a_wrong_backward_fails).
"""
import numpy as np
import pytest

from tinyresnet import models
from tinyresnet.gradcheck import check_direction

TOL = 1e-6
IMAGENET_STEPS = (1e-9, 1e-10)
CIFAR_STEPS = (1e-7, 1e-8)


def directional_error(model, x, steps):
    """The first passing check over the steps, else the last one (whose report is shown)."""
    for h in steps:
        error = check_direction(model, x, h=h)
        if error.passed(tol=TOL):
            break
    return error


CASES = [
    # name, kwargs, input shape (large enough that layer4's BN sees >= 4 values per channel), steps
    pytest.param("resnet18", {"num_classes": 10}, (1, 3, 64, 64), IMAGENET_STEPS, id="resnet18"),
    pytest.param("resnet50", {"num_classes": 10}, (1, 3, 64, 64), IMAGENET_STEPS, id="resnet50"),
    pytest.param("resnext50_32x4d", {"num_classes": 10}, (1, 3, 64, 64), IMAGENET_STEPS,
                 id="resnext50_32x4d", marks=pytest.mark.slow),  # grouped 3x3s; as long as resnet50
    pytest.param("cifar_resnet20", {}, (2, 3, 16, 16), CIFAR_STEPS, id="cifar_resnet20"),
    pytest.param("cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16), CIFAR_STEPS,
                 id="cifar_resnet20-B"),
    pytest.param("preact_cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16), CIFAR_STEPS,
                 id="preact_cifar20-B"),
    pytest.param("plain_cifar_resnet20", {}, (2, 3, 16, 16), CIFAR_STEPS, id="plain_cifar20"),
]


@pytest.mark.parametrize("name, kwargs, shape, steps", CASES)
def test_whole_network_directional_derivative(name, kwargs, shape, steps, rng):
    model = models.get_model(name, **kwargs).double().train()
    error = directional_error(model, rng.standard_normal(shape), steps)
    assert error.passed(tol=TOL), str(error)


def test_a_wrong_backward_fails(rng, monkeypatch):
    """The check can fail: a block that drops the shortcut's gradient (the "+1") is caught."""
    model = models.cifar_resnet20().double().train()
    block = model.layer2[1]
    monkeypatch.setattr(block, "shortcut_backward", lambda d: 0 * d)
    error = check_direction(model, rng.standard_normal((2, 3, 16, 16)), h=CIFAR_STEPS[0])
    assert not error.passed(tol=TOL), str(error)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["preact_resnet18", "preact_resnet50", "resnet34"])
def test_more_networks_directional_derivative(name, rng):
    model = models.get_model(name, num_classes=10).double().train()
    error = directional_error(model, rng.standard_normal((2, 3, 64, 64)), IMAGENET_STEPS)
    assert error.passed(tol=TOL), str(error)
