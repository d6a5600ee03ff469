"""summary(): per-layer shapes, parameters and MACs, totals against torchvision's published figures
and the 2015 paper's Table 1, without running the arithmetic and without side effects."""
import numpy as np
import pytest

from tinyresnet import models

# torchvision's model cards ("GFLOPS", which are multiply-accumulates), 224x224, 1000 classes.
TORCHVISION_GMACS = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09, "resnet101": 7.80,
                     "resnet152": 11.51, "wide_resnet50_2": 11.40, "wide_resnet101_2": 22.75,
                     "resnext50_32x4d": 4.23, "resnext101_32x8d": 16.41,
                     "resnext101_64x4d": 15.46}
# He et al. 2015, Table 1 ("FLOPs", also multiply-adds), with the stride on the first 1x1 conv.
PAPER_GMACS = {"resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}


@pytest.mark.parametrize("name, published", TORCHVISION_GMACS.items())
def test_macs_match_torchvision(name, published, skip_init):
    s = models.summary(models.get_model(name), (3, 224, 224))
    assert s.gmacs == pytest.approx(published, rel=0.02)
    assert s.total_params == sum(r.params for r in s.rows)
    assert s.output_shape == (1, 1000)


@pytest.mark.parametrize("name, published", PAPER_GMACS.items())
def test_macs_match_the_paper_with_the_stride_in_the_1x1(name, published, skip_init):
    s = models.summary(models.get_model(name, stride_in_1x1=True), (3, 224, 224))
    assert s.gmacs == pytest.approx(published, rel=0.03)
    # torchvision's placement costs more: the 3x3 conv runs at the higher resolution.
    assert s.gmacs < models.summary(models.get_model(name), (3, 224, 224)).gmacs


def test_rows_count_conv_and_linear_macs(skip_init):
    s = models.summary(models.resnet18(), (3, 224, 224))
    conv1, bn1 = s.rows[0], s.rows[1]
    assert (conv1.name, conv1.type, conv1.output_shape) == ("conv1", "Conv2d", (1, 64, 112, 112))
    assert conv1.params == 64 * 3 * 7 * 7
    assert conv1.macs == 64 * 112 * 112 * 3 * 7 * 7
    assert (bn1.params, bn1.macs) == (128, 0)
    fc = s.rows[-1]
    assert (fc.name, fc.output_shape, fc.params, fc.macs) == ("fc", (1, 1000), 513_000, 512_000)
    down = next(r for r in s.rows if r.name == "layer2.0.downsample.0")
    assert down.output_shape == (1, 128, 28, 28) and down.macs == 128 * 28 * 28 * 64


def test_cifar_summary_and_batch_scaling():
    model = models.cifar_resnet20()
    one = models.summary(model, (3, 32, 32))
    assert one.total_params == 269_722
    assert one.total_macs == 40_551_040  # 40.6M multiply-adds per 32x32 image
    assert models.summary(model, (8, 3, 32, 32)).total_macs == 8 * one.total_macs


def test_table_prints_every_layer_and_the_totals():
    text = str(models.summary(models.cifar_resnet20(), (3, 32, 32)))
    assert "layer3.2.conv2 (Conv2d)" in text and "(1, 64, 8, 8)" in text
    assert "Total params: 269,722" in text and "Total MACs: 40,551,040" in text


def test_summary_runs_no_arithmetic_and_changes_nothing():
    model = models.resnet18().train()
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    models.summary(model, (3, 224, 224))
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # no BN statistics updated
    assert "forward" not in model.conv1.__dict__  # the real forward is back


def test_bad_input_shapes():
    model = models.cifar_resnet20()
    with pytest.raises(ValueError, match="input_shape must be"):
        models.summary(model, (32, 32))
    with pytest.raises(ValueError, match="conv1.*expected input with 3 channels"):
        models.summary(model, (1, 32, 32))


def test_grouped_conv_macs_divide_by_groups(skip_init):
    """A grouped 3x3 sees C/g input channels per output: g times fewer MACs than ungrouped."""
    model = models.resnext50_32x4d()
    rows = {r.name: r for r in models.summary(model, (3, 56, 56)).rows}
    conv2 = rows["layer1.0.conv2"]  # 128 -> 128 channels, 32 groups, 14x14 output
    assert conv2.output_shape == (1, 128, 14, 14)
    assert conv2.macs == 128 * 14 * 14 * (128 // 32) * 9
    assert conv2.params == 128 * 4 * 9


def test_pooling_options_in_the_summary():
    from tinyresnet import nn

    model = nn.Sequential(nn.Conv2d(3, 4, 2, padding="same"), nn.MaxPool2d(3, 2, ceil_mode=True),
                          nn.AdaptiveAvgPool2d((3, None)), nn.AdaptiveMaxPool2d(2))
    shapes = [r.output_shape for r in models.summary(model, (3, 10, 9)).rows]
    assert shapes == [(1, 4, 10, 9), (1, 4, 5, 4), (1, 4, 3, 4), (1, 4, 2, 2)]
    assert shapes == [tuple(y.shape) for y in _outputs(model, np.zeros((1, 3, 10, 9), np.float32))]


def _outputs(model, x):
    out = []
    for layer in model:
        x = layer(x)
        out.append(x)
    return out
