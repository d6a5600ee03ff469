"""Identity vs residual split: the two parts add up to the block's input gradient, and each part
is the derivative along its own path (checked by finite differences, independently of backward)."""
import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models, nn
from tinyresnet.models import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ShortcutA
from tinyresnet.viz._instrument import patched, record_forward
from tinyresnet.viz.split import gradient_split, plot_gradient_split, record_split


def _batch(rng, size, n=2):
    return rng.standard_normal((n, 3, size, size)), rng.integers(0, 10, n)


def _loss(model, x, y):
    return nn.CrossEntropyLoss()(model(x), y)


def _directional(model, x, y, block, method, v, h):
    """d/dt L at t = 0 with ``block.<method>``'s input moved to input + t v (other paths unmoved)."""
    original = getattr(block, method)

    def at(t):
        with patched(block, **{method: lambda inp: original(inp + t * v)}):
            return _loss(model, x, y)

    return (at(h) - at(-h)) / (2 * h)


def _check_block(model, x, y, name, block, rng, parts, h=1e-6, rel=1e-6):
    """The block's input gradient (and, for post-activation blocks, each part) against finite
    differences along a random direction."""
    with nn.no_grad(), record_forward([(name, block)]) as record:
        model(x)
    v = rng.standard_normal(record.inputs[name].shape)
    split = gradient_split(model, x, y)
    with record_split(model) as recorded:
        loss_fn = nn.CrossEntropyLoss()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    got = recorded[name]
    checks = [("forward", got.grad_branch + got.grad_shortcut)]
    if parts:
        checks += [("shortcut_forward", got.grad_shortcut), ("branch_forward", got.grad_branch)]
    for method, analytic in checks:
        numeric = _directional(model, x, y, block, method, v, h)
        assert float((analytic * v).sum()) == pytest.approx(numeric, rel=rel, abs=1e-10), (
            name, method)
    return split.max_sum_error[split.names.index(name)]


@pytest.mark.parametrize("factory, size", [
    (models.resnet18, 32),
    (models.resnet50, 32),
    (models.cifar_resnet20, 8),
    (lambda **kw: models.cifar_resnet(20, shortcut="B", **kw), 8),
    (models.preact_resnet18, 32),
], ids=["resnet18", "resnet50", "cifar_resnet20_A", "cifar_resnet20_B", "preact_resnet18"])
def test_parts_add_up_to_the_input_gradient(factory, size, rng):
    model = factory(num_classes=10).double()
    x, y = _batch(rng, size)
    split = gradient_split(model, x, y)
    assert len(split.names) == len(list(models.residual_blocks(model)))
    # shortcut part + branch part == dL/dx of the block, to float64 round-off, for every block.
    assert np.all(split.max_sum_error < 1e-12), split.max_sum_error
    assert np.all(split.shortcut_norm > 0) and np.all(split.branch_norm > 0)
    assert np.all(np.abs(split.cosine) <= 1)


def test_parts_are_the_derivatives_along_each_path(rng):
    """CIFAR ResNet-20 with option A, every block; finite differences along one direction."""
    model = models.cifar_resnet20().double()
    x, y = _batch(rng, 8)
    for name, block in models.residual_blocks(model):
        assert _check_block(model, x, y, name, block, rng, parts=True) < 1e-12


@pytest.mark.parametrize("factory, size, n, blocks, h", [
    (lambda **kw: models.cifar_resnet(20, shortcut="B", **kw), 8, 2, ["layer2.0", "layer3.1"], 1e-6),
    (models.preact_cifar_resnet20, 8, 2, ["layer1.0", "layer2.0", "layer3.2"], 1e-6),
    pytest.param(models.resnet50, 64, 4, ["layer1.0", "layer2.0", "layer4.2"], 1e-9,
                 marks=pytest.mark.slow),
    pytest.param(models.preact_resnet18, 64, 4, ["layer2.0", "layer4.1"], 1e-9,
                 marks=pytest.mark.slow),
], ids=["cifar_resnet20_B", "preact_cifar_resnet20", "resnet50", "preact_resnet18"])
def test_input_gradient_matches_finite_differences(factory, size, n, blocks, h, rng):
    """Projection shortcuts and bottlenecks too; pre-activation blocks share BN-ReLU between their
    two paths, so only their total is checked this way.  The ImageNet nets need 64x64 inputs and 4
    images (at 32x32 with 2, layer4's BN normalises 2 numbers per channel: (a - b) / |a - b| is
    nearly a step) and a step of 1e-9: with a million ReLUs a kink can lie within 1e-8 of the
    point (for ResNet-50's layer1.0 the one-sided quotients still differ by 1.4% at 1e-8, and agree
    with backward to 1e-6 at 1e-9, where the forward's round-off, ~1e-14 of the loss, leaves
    ~1e-5 of error in the quotient: hence rel 1e-4 there)."""
    model = factory(num_classes=10).double()
    x, y = _batch(rng, size, n)
    named = dict(models.residual_blocks(model))
    for name in blocks:
        parts = not getattr(named[name], "preact", False)
        rel = 1e-4 if h < 1e-7 else 1e-6
        _check_block(model, x, y, name, named[name], rng, parts=parts, h=h, rel=rel)


def test_plain_blocks_have_no_shortcut_part(rng):
    model = models.plain_cifar_resnet20().double()
    split = gradient_split(model, *_batch(rng, 8))
    assert np.all(split.shortcut_norm == 0) and np.all(split.branch_norm > 0)
    assert np.all(split.max_sum_error == 0)


BLOCKS = [
    pytest.param(lambda: BasicBlock(3, 3), (2, 3, 4, 4), id="basic-identity"),
    pytest.param(lambda: BasicBlock(2, 4, stride=2), (2, 2, 5, 5), id="basic-projection"),
    pytest.param(lambda: BasicBlock(2, 4, stride=2, downsample=ShortcutA(2, 4, 2)), (2, 2, 4, 4),
                 id="basic-option-A"),
    pytest.param(lambda: BasicBlock(2, 3, stride=2, skip=False), (2, 2, 4, 4), id="basic-plain"),
    pytest.param(lambda: Bottleneck(8, 2), (2, 8, 3, 3), id="bottleneck-identity"),
    pytest.param(lambda: Bottleneck(4, 2, stride=2), (2, 4, 4, 4), id="bottleneck-projection"),
    pytest.param(lambda: PreActBasicBlock(3, 3), (2, 3, 4, 4), id="preact-basic-identity"),
    pytest.param(lambda: PreActBasicBlock(2, 4, stride=2), (2, 2, 4, 4), id="preact-basic-projection"),
    pytest.param(lambda: PreActBottleneck(4, 2, stride=2), (2, 4, 4, 4), id="preact-bottleneck"),
    pytest.param(lambda: PreActBasicBlock(2, 4, stride=2, skip=False), (2, 2, 4, 4),
                 id="preact-plain"),
]


@pytest.mark.parametrize("make, shape", BLOCKS)
def test_record_split_of_one_block(make, shape, rng):
    """The parts add up to the block's own dx, the identity's part is the gradient at the sum, and
    recording changes neither dx nor any parameter gradient; leaving restores the block."""
    block = make().double()
    x = rng.standard_normal(shape)
    y = block(x)
    dy = rng.standard_normal(y.shape)
    dx = block.backward(dy)
    grads = {n: p.grad.copy() for n, p in block.named_parameters()}
    block.zero_grad()
    block(x)
    with record_split(block) as parts:
        dx_recorded = block.backward(dy)
    assert "backward" not in vars(block) and "branch_backward" not in vars(block)
    got = parts[""]
    np.testing.assert_allclose(got.grad_branch + got.grad_shortcut, dx_recorded, rtol=0, atol=0)
    np.testing.assert_allclose(dx_recorded, dx, rtol=1e-12, atol=1e-14)
    for n, p in block.named_parameters():
        np.testing.assert_allclose(p.grad, grads[n], rtol=1e-12, atol=1e-14, err_msg=n)
    assert all(m._caches == [] for m in block.modules())
    if not block.skip:
        assert not got.grad_shortcut.any()
    elif block.downsample is None and not block.preact:
        # The "+1": through the identity the input receives exactly the gradient at the sum,
        # which is dy where the output ReLU let it through.
        np.testing.assert_array_equal(got.grad_shortcut, dy * (y > 0))
    elif block.downsample is None:
        np.testing.assert_array_equal(got.grad_shortcut, dy)
    else:
        assert np.abs(got.grad_shortcut).max() > 0.01 * np.abs(dx).max()


def test_plot_gradient_split(tmp_path, rng):
    x, y = _batch(rng, 8)
    splits = {}
    for label, skip in (("ResNet-20", True), ("Plain-20", False)):
        tr.manual_seed(0)
        splits[label] = gradient_split(models.cifar_resnet(20, skip=skip).double(), x, y)
    fig = plot_gradient_split(splits)
    fig.savefig(tmp_path / "split.png")
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
