"""Whole-network gradient checks: the directional derivative along one random direction over the
input and every parameter (tinyresnet.gradcheck.check_direction), float64.

The direction is scaled to each tensor's own size and the step is chosen by check_direction
(of the steps whose difference quotient agrees with the next smaller step's within the round-off
it measures, the one that agrees best), so no test picks steps by hand.  A correct network comes
out at or below 1e-8 on both OpenBLAS kernels and a wrong factor in one layer at or above 1e-3
(docs/guides/gradcheck.md, measured with benchmarks/gradcheck_margins.py): TOL = 1e-6 keeps 100x
on both sides.

The CIFAR nets and ResNet-18 are checked in training mode (BN through its batch statistics).
The ResNet-50s are checked in eval mode: in training mode at initialisation a deep BN network is
chaotic (Yang et al. 2019, "A mean field theory of batch normalization": gradients grow
geometrically with depth), measured here as a relative output change 1,700 times the relative
change of the weights, so ReLU inputs cross zero within any step that round-off allows.  The
bottleneck wiring is what ResNet-50 adds; BN's training-mode backward is checked in the
networks above.  ResNeXt is not checked here: in eval mode its 4-channel groups let a whole group
of ReLU-zeroed inputs give a conv output of exactly zero, which sits on the next ReLU's kink
(measured 5e-3 at init; 2.7e-8 with random BN betas, too close to the tolerance), and in training
mode it comes out at 1.7e-8; its gradients are compared with a torch rebuild instead, to 1e-8
(tests/models/test_parity_torch.py), and grouped convolution is gradient-checked op by op.
"""
import pytest

from tinyresnet import models
from tinyresnet.gradcheck import check_direction

TOL = 1e-6

CASES = [
    # name, kwargs, input shape (large enough that layer4's BN sees >= 4 values per channel), mode
    pytest.param("resnet18", {"num_classes": 10}, (1, 3, 64, 64), "train", id="resnet18"),
    pytest.param("resnet50", {"num_classes": 10}, (1, 3, 64, 64), "eval", id="resnet50-eval"),
    pytest.param("cifar_resnet20", {}, (2, 3, 16, 16), "train", id="cifar_resnet20"),
    pytest.param("cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16), "train",
                 id="cifar_resnet20-B"),
    pytest.param("preact_cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16), "train",
                 id="preact_cifar20-B"),
    pytest.param("plain_cifar_resnet20", {}, (2, 3, 16, 16), "train", id="plain_cifar20"),
]


def _model(name, kwargs, mode):
    model = models.get_model(name, **kwargs).double()
    return model.train() if mode == "train" else model.eval()


@pytest.mark.parametrize("name, kwargs, shape, mode", CASES)
def test_whole_network_directional_derivative(name, kwargs, shape, mode, rng):
    error = check_direction(_model(name, kwargs, mode), rng.standard_normal(shape))
    assert error.passed(tol=TOL), str(error)


def test_a_wrong_backward_fails(rng, monkeypatch):
    """The check can fail: a block that drops the shortcut's gradient (the "+1") is caught."""
    model = models.cifar_resnet20().double().train()
    block = model.layer2[1]
    monkeypatch.setattr(block, "shortcut_backward", lambda d: 0 * d)
    error = check_direction(model, rng.standard_normal((2, 3, 16, 16)))
    assert not error.passed(tol=TOL), str(error)


@pytest.mark.slow
@pytest.mark.parametrize("name, mode, batch", [("preact_resnet18", "train", 2),
                                               ("resnet34", "train", 2),
                                               ("preact_resnet50", "eval", 1)])
def test_more_networks_directional_derivative(name, mode, batch, rng):
    # the batches measured best (docs/guides/gradcheck.md): preact_resnet50 at batch 2 and
    # resnet34 at batch 1 leave 2e-8 to 3e-8, round-off at the largest step free of kinks
    model = _model(name, {"num_classes": 10}, mode)
    error = check_direction(model, rng.standard_normal((batch, 3, 64, 64)))
    assert error.passed(tol=TOL), str(error)
