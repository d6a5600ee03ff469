"""Residual blocks: shapes, the projection shortcut, element-wise gradient checks, and the split of
the input gradient into its shortcut and branch parts."""
import numpy as np
import pytest

from tinyresnet import models, nn
from tinyresnet.gradcheck import check_module
from tinyresnet.models import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ShortcutA


def test_basic_block_64_to_128_stride_2_uses_the_projection_shortcut(rng):
    """The seed question: BasicBlock(64, 128, stride=2) on (1, 64, 32, 32)."""
    block = BasicBlock(64, 128, stride=2)
    y = block(rng.standard_normal((1, 64, 32, 32)).astype(np.float32))
    assert y.shape == (1, 128, 16, 16)
    assert y.dtype == np.float32
    down = block.downsample
    assert isinstance(down, nn.Sequential) and len(down) == 2
    assert isinstance(down[0], nn.Conv2d) and isinstance(down[1], nn.BatchNorm2d)
    assert down[0].weight.shape == (128, 64, 1, 1)
    assert down[0].stride == (2, 2) and down[0].bias is None
    assert down[1].num_features == 128
    assert {k for k in block.state_dict() if k.startswith("downsample")} == {
        "downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
        "downsample.1.running_mean", "downsample.1.running_var", "downsample.1.num_batches_tracked",
    }


def test_same_shape_block_uses_the_identity(rng):
    block = BasicBlock(16, 16)
    assert block.downsample is None
    assert block(rng.standard_normal((2, 16, 8, 8)).astype(np.float32)).shape == (2, 16, 8, 8)


def test_bottleneck_shapes_and_where_the_stride_sits():
    default = Bottleneck(256, 128, stride=2)
    assert (default.conv1.stride, default.conv2.stride) == ((1, 1), (2, 2))
    paper = Bottleneck(256, 128, stride=2, stride_in_1x1=True)
    assert (paper.conv1.stride, paper.conv2.stride) == ((2, 2), (1, 1))
    assert default.conv3.weight.shape == (512, 128, 1, 1)
    assert default.downsample[0].weight.shape == (512, 256, 1, 1)
    x = np.zeros((1, 256, 8, 8), dtype=np.float32)
    assert default(x).shape == paper(x).shape == (1, 512, 4, 4)


def test_plain_block_has_no_shortcut(rng):
    block = BasicBlock(16, 32, stride=2, skip=False)
    assert block.downsample is None and not block.skip
    x = rng.standard_normal((2, 16, 8, 8))
    block.double()
    y = block(x)
    expected = np.maximum(block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x))))), 0)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="plain block"):
        BasicBlock(16, 32, stride=2, downsample=ShortcutA(16, 32, 2), skip=False)


def test_basic_block_rejects_what_torchvision_rejects():
    with pytest.raises(ValueError, match="groups=1 and base_width=64"):
        BasicBlock(64, 64, base_width=32)
    with pytest.raises(NotImplementedError, match="dilation"):
        BasicBlock(64, 64, dilation=2)


BLOCKS = [
    pytest.param(lambda: BasicBlock(3, 3), (2, 3, 4, 4), id="basic-identity"),
    pytest.param(lambda: BasicBlock(2, 4, stride=2), (2, 2, 5, 5), id="basic-projection"),
    pytest.param(lambda: BasicBlock(2, 4, stride=2, downsample=ShortcutA(2, 4, 2)), (2, 2, 4, 4),
                 id="basic-option-A"),
    pytest.param(lambda: BasicBlock(2, 3, stride=2, skip=False), (2, 2, 4, 4), id="basic-plain"),
    pytest.param(lambda: Bottleneck(8, 2), (2, 8, 3, 3), id="bottleneck-identity"),
    pytest.param(lambda: Bottleneck(4, 2, stride=2), (2, 4, 4, 4), id="bottleneck-projection"),
    pytest.param(lambda: Bottleneck(4, 2, stride=2, stride_in_1x1=True), (2, 4, 4, 4),
                 id="bottleneck-stride-in-1x1"),
    pytest.param(lambda: Bottleneck(4, 2, dilation=2), (2, 4, 5, 5), id="bottleneck-dilated"),
    pytest.param(lambda: PreActBasicBlock(3, 3), (2, 3, 4, 4), id="preact-basic-identity"),
    pytest.param(lambda: PreActBasicBlock(2, 4, stride=2), (2, 2, 4, 4), id="preact-basic-projection"),
    pytest.param(lambda: PreActBottleneck(4, 2, stride=2), (2, 4, 4, 4), id="preact-bottleneck"),
]


@pytest.mark.parametrize("make, shape", BLOCKS)
def test_block_gradients_elementwise(make, shape, rng):
    block = make().double().train()
    report = check_module(block, rng.standard_normal(shape))
    assert report.ok, str(report)


@pytest.mark.parametrize("make, shape", [BLOCKS[1], BLOCKS[5], BLOCKS[9]])
def test_block_gradients_elementwise_in_eval_mode(make, shape, rng):
    block = make().double().eval()
    for m in block.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.normal(0, 0.3, m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2, m.num_features)
    report = check_module(block, rng.standard_normal(shape))
    assert report.ok, str(report)


@pytest.mark.parametrize("make, shape", BLOCKS)
def test_shortcut_and_branch_parts_add_up_to_the_input_gradient(make, shape, rng):
    block = make().double()
    x = rng.standard_normal(shape)
    y = block(x)
    dy = rng.standard_normal(y.shape)
    dx = block.backward(dy)
    np.testing.assert_allclose(block.grad_shortcut + block.grad_branch, dx, rtol=1e-13, atol=1e-13)
    if not block.skip:
        assert not block.grad_shortcut.any()
    elif block.downsample is None and not block.preact:
        # The "+1": through the identity the input receives exactly the gradient at the sum,
        # which is dy where the output ReLU let it through.
        np.testing.assert_array_equal(block.grad_shortcut, dy * (y > 0))
    elif block.downsample is None:
        np.testing.assert_array_equal(block.grad_shortcut, dy)


def test_grad_split_can_be_switched_off(rng):
    block = BasicBlock(2, 4, stride=2).double()
    block.keep_grad_split = False
    y = block(rng.standard_normal((2, 2, 4, 4)))
    block.backward(np.ones_like(y))
    assert block.grad_shortcut is None and block.grad_branch is None


def test_backward_without_forward_is_refused():
    with pytest.raises(RuntimeError, match="without a forward"):
        BasicBlock(2, 2).backward(np.ones((1, 2, 2, 2), dtype=np.float32))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "cifar_resnet20", "preact_cifar_resnet20"])
def test_split_adds_up_for_every_block_of_a_network(name, rng, monkeypatch):
    """For every block: shortcut part + branch part = the block's input gradient, and through an
    identity shortcut the part is exactly the gradient at the sum (dy masked by the output ReLU,
    or dy itself in a pre-activation block)."""
    model = models.get_model(name, num_classes=10).double().eval()
    seen = {}  # block name -> [output, dy, dx]
    for block_name, block in models.residual_blocks(model):
        def recording_forward(x, forward=block.forward, block_name=block_name):
            seen[block_name] = [forward(x)]
            return seen[block_name][0]

        def recording_backward(dy, backward=block.backward, block_name=block_name):
            seen[block_name] += [dy, backward(dy)]
            return seen[block_name][2]
        monkeypatch.setattr(block, "forward", recording_forward)
        monkeypatch.setattr(block, "backward", recording_backward)
    y = model(rng.standard_normal((2, 3, 32, 32)))
    model.backward(rng.standard_normal(y.shape))
    identities = 0
    for block_name, block in models.residual_blocks(model):
        out, dy, dx = seen[block_name]
        np.testing.assert_allclose(block.grad_shortcut + block.grad_branch, dx, rtol=1e-12,
                                   atol=1e-15, err_msg=block_name)
        if block.downsample is None:
            identities += 1
            expected = dy if block.preact else dy * (out > 0)
            np.testing.assert_array_equal(block.grad_shortcut, expected, err_msg=block_name)
    assert identities == len(seen) - {"resnet18": 3, "resnet50": 4}.get(name, 2)


def test_residual_blocks_in_depth_order(skip_init):
    names = [name for name, _ in models.residual_blocks(models.resnet18())]
    assert names == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    names = [name for name, _ in models.residual_blocks(models.cifar_resnet20())]
    assert names == [f"layer{i}.{j}" for i in range(1, 4) for j in range(3)]
