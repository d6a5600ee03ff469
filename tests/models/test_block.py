"""Residual blocks: shapes, the projection shortcut, one relu used twice as in torchvision, and
element-wise gradient checks.  (The split of the input gradient into its shortcut and branch parts
is measured by viz.record_split: tests/viz/test_split.py.)"""
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
    expected = np.maximum(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))), 0)
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


def test_blocks_have_torchvisions_modules_one_relu_used_twice(rng):
    """torchvision's BasicBlock / Bottleneck hold one ``relu`` and call it inside the branch and
    after the sum; the backward pops its caches in reverse order."""
    basic = BasicBlock(4, 8, stride=2)
    assert [n for n, _ in basic.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2",
                                                      "downsample"]
    bottleneck = Bottleneck(8, 2)
    assert [n for n, _ in bottleneck.named_children()] == ["conv1", "bn1", "conv2", "bn2", "conv3",
                                                           "bn3", "relu"]
    bottleneck.double()
    y = bottleneck(rng.standard_normal((2, 8, 3, 3)))
    assert len(bottleneck.relu._caches) == 3
    bottleneck.backward(np.ones_like(y))
    assert all(m._caches == [] for m in bottleneck.modules())


def test_blocks_keep_no_gradient_copies(rng):
    """Nothing plot-only in the core: after backward a block holds no part of its gradient."""
    block = BasicBlock(2, 4, stride=2).double()
    y = block(rng.standard_normal((2, 2, 4, 4)))
    before = set(vars(block))
    block.backward(np.ones_like(y))
    assert set(vars(block)) == before
    assert not any(hasattr(block, name) for name in ("grad_branch", "grad_shortcut"))


def test_backward_without_forward_is_refused():
    with pytest.raises(RuntimeError, match="without a forward"):
        BasicBlock(2, 2).backward(np.ones((1, 2, 2, 2), dtype=np.float32))


def test_residual_blocks_in_depth_order(skip_init):
    names = [name for name, _ in models.residual_blocks(models.resnet18())]
    assert names == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    names = [name for name, _ in models.residual_blocks(models.cifar_resnet20())]
    assert names == [f"layer{i}.{j}" for i in range(1, 4) for j in range(3)]
