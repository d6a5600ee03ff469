"""Lesion study (Veit et al. 2016): a ResNet survives the loss of most single blocks, a plain net
survives none."""
import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models, nn
from tinyresnet.viz.landscape import evaluate
from tinyresnet.viz.lesion import delete_block, lesion_study, plot_lesion


def _x(rng, n=4):
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("preact", [False, True])
def test_deleted_residual_block_computes_its_shortcut(rng, preact):
    model = models.cifar_resnet(8, in_channels=1, preact=preact).eval()
    x = _x(rng)
    for name, block in models.residual_blocks(model):
        with nn.no_grad():
            inp = np.abs(rng.standard_normal((4, block.conv1.in_channels, 8, 8))).astype(np.float32)
            with delete_block(block):
                out = block(inp)
            if preact:
                a = block.relu1(block.bn1(inp))
                expected = inp if block.downsample is None else block.downsample(a)
            else:
                expected = np.maximum(block.shortcut_forward(inp), 0)
        np.testing.assert_allclose(out, expected, err_msg=name)
        assert "branch_forward" not in vars(block) and "forward" not in vars(block)
    with nn.no_grad():
        model(x)  # the model runs as before


def test_plain_blocks_that_change_shape_are_not_deleted(rng):
    model = models.cifar_resnet(14, in_channels=1, skip=False)
    y = rng.integers(0, 10, 16)
    lesion = lesion_study(model, _x(rng, 16), y)
    assert lesion.names == ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1"]
    assert list(np.isnan(lesion.accuracy)) == [False, False, True, False, True, False]
    assert model.training  # the mode is restored


def test_resnet_survives_single_deletions(trained_resnet20):
    """Veit et al.: deleting one block of a trained ResNet costs little, except at the start of
    a stage (there the block changes resolution and width: its shortcut only subsamples and pads).
    """
    model, x, y = trained_resnet20
    x, y = x[:300], y[:300]
    lesion = lesion_study(model, x, y)
    assert lesion.baseline_accuracy > 0.95
    assert lesion.baseline_accuracy == pytest.approx(evaluate(model, x, y)[1])  # model intact
    within_stage = [i for i, n in enumerate(lesion.names) if not n.endswith(".0")]
    drops = lesion.baseline_accuracy - lesion.accuracy[within_stage]
    assert np.median(drops) < 0.05, dict(zip(lesion.names, lesion.accuracy))
    assert np.all(lesion.accuracy[within_stage] > 0.5), dict(zip(lesion.names, lesion.accuracy))


@pytest.mark.slow
def test_plain_net_breaks_at_every_deletion(trained_plain20, trained_resnet20):
    plain, x, y = trained_plain20
    lesion = lesion_study(plain, x, y)
    assert lesion.baseline_accuracy > 0.9
    deletable = ~np.isnan(lesion.accuracy)
    # One path only: cutting it leaves a network that never learnt to work without the block.
    assert np.all(lesion.accuracy[deletable] < 0.5), dict(zip(lesion.names, lesion.accuracy))
    resnet = lesion_study(*trained_resnet20)
    assert np.nanmean(resnet.accuracy) > np.nanmean(lesion.accuracy) + 0.3


def test_plot_lesion(tmp_path, rng):
    x, y = _x(rng, 16), rng.integers(0, 10, 16)
    lesions = {}
    for label, skip in (("ResNet-14", True), ("plain-14", False)):
        tr.manual_seed(0)
        lesions[label] = lesion_study(models.cifar_resnet(14, in_channels=1, skip=skip), x, y)
    fig = plot_lesion(lesions)
    fig.savefig(tmp_path / "lesion.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and len(ax.get_legend().get_texts()) == 4
