"""Whole networks against PyTorch: ResNet-18, ResNet-50, ResNeXt-50 32x4d (torchvision's structure,
rebuilt in plain torch) and CIFAR ResNet-20 with option A shortcuts, float64.

Same weights in both (through state dicts with identical keys); compared: the logits in training
mode (batch statistics) and in eval mode (running statistics), the running statistics after the
training-mode forward, the input gradient and the gradient of every parameter after a
cross-entropy backward, all to 1e-8 relative.
"""
import numpy as np
import pytest

from tinyresnet import models, nn

torch = pytest.importorskip("torch")

from ._torch_reference import (  # noqa: E402  (needs torch)
    Bottleneck,
    BasicBlock,
    CifarResNet,
    ResNet,
    load_into_torch,
    randomize_batchnorm,
)

RTOL = 1e-8


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_close(actual, expected, name):
    """Max-norm relative error: max |a - e| <= RTOL * max |e|."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} vs {expected.shape}"
    scale = np.abs(expected).max()
    err = np.abs(actual - expected).max() / scale if scale > 0 else np.abs(actual).max()
    assert err <= RTOL, f"{name}: relative error {err:.2e} > {RTOL:g}"


def compare(model, make_torch_model, x, labels):
    model.double()
    randomize_batchnorm(model, np.random.default_rng(1))
    torch_model = load_into_torch(make_torch_model, model)
    assert list(torch_model.state_dict()) == list(model.state_dict())

    # Training mode: batch statistics, running averages updated, gradients.
    model.train(), torch_model.train()
    loss_fn = nn.CrossEntropyLoss()
    logits = model(x)
    loss = loss_fn(logits, labels)
    model.zero_grad()
    dx = model.backward(loss_fn.backward())

    xt = torch.tensor(x, requires_grad=True)
    logits_t = torch_model(xt)
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(labels))
    loss_t.backward()

    assert_close(logits, logits_t.detach().numpy(), "train logits")
    assert loss == pytest.approx(loss_t.item(), rel=RTOL)
    assert_close(dx, xt.grad.numpy(), "input gradient")
    torch_params = dict(torch_model.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert names == list(torch_params)
    for name, p in model.named_parameters():
        assert_close(p.grad, torch_params[name].grad.numpy(), f"grad of {name}")
    torch_state = torch_model.state_dict()
    for name, array in model.state_dict().items():
        if "running" in name or "num_batches" in name:
            assert_close(array, torch_state[name].numpy(), name)

    # Eval mode: running statistics.
    model.eval(), torch_model.eval()
    with torch.no_grad():
        expected = torch_model(torch.tensor(x)).numpy()
    assert_close(model(x), expected, "eval logits")


def test_resnet18_matches_torch(rng):
    x = rng.standard_normal((2, 3, 40, 40))  # layer4 is 2x2: its BN normalises 8 values
    compare(models.resnet18(num_classes=10), lambda: ResNet(BasicBlock, [2, 2, 2, 2], 10), x,
            np.array([3, 7]))


def test_resnet50_matches_torch(rng):
    x = rng.standard_normal((2, 3, 40, 40))
    compare(models.resnet50(num_classes=10), lambda: ResNet(Bottleneck, [3, 4, 6, 3], 10), x,
            np.array([0, 9]))


@pytest.mark.slow
def test_resnet50_matches_torch_at_112(rng):
    x = rng.standard_normal((4, 3, 112, 112))
    compare(models.resnet50(num_classes=1000), lambda: ResNet(Bottleneck, [3, 4, 6, 3], 1000), x,
            np.array([0, 9, 500, 999]))


def test_resnext50_32x4d_matches_torch(rng):
    """Grouped 3x3 convolutions (32 groups) in every bottleneck, against torch's groups=32."""
    x = rng.standard_normal((2, 3, 40, 40))
    compare(models.resnext50_32x4d(num_classes=10),
            lambda: ResNet(Bottleneck, [3, 4, 6, 3], 10, groups=32, width_per_group=4), x,
            np.array([4, 1]))


def test_cifar_resnet20_option_a_matches_torch(rng):
    x = rng.standard_normal((2, 3, 32, 32))
    compare(models.cifar_resnet20(), lambda: CifarResNet(20), x, np.array([1, 2]))
