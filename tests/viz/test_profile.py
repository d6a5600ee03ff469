"""Per-layer gradient profile: the plain net's gradient explodes toward the input, the ResNet's not."""
import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models
from tinyresnet.viz.profile import gradient_profile, plot_gradient_profile, weight_layers


def _random_batch(seed, size, n=32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, size, size)).astype(np.float32), rng.integers(0, 10, n)


def _ratio(skip, seed, size, depth=56):
    """log10(||dL/dW|| of conv1 / of the last block's conv2), BN in training mode, He init."""
    tr.manual_seed(seed)
    model = models.cifar_resnet(depth, skip=skip)
    profile = gradient_profile(model, *_random_batch(seed, size))
    main = [profile.names[i] for i in profile.main_path]
    assert main[0] == "conv1" and main[-2] == f"layer3.{(depth - 2) // 6 - 1}.conv2"
    return profile.first_last_ratio()


def test_profile_lists_every_weight_layer_in_depth_order(rng):
    model = models.cifar_resnet(20, shortcut="B")
    profile = gradient_profile(model, *_random_batch(0, 8, n=4))
    names = [name for name, _ in weight_layers(model)]
    assert profile.names == names and names[0] == "conv1" and names[-1] == "fc"
    assert len(names) == 1 + 3 * 3 * 2 + 2 + 1  # stem, 18 branch convs, 2 projections, fc
    assert list(np.array(names)[profile.on_shortcut]) == ["layer2.0.downsample.0",
                                                          "layer3.0.downsample.0"]
    # The recorded norms are those of the gradients the backward left behind.
    params = dict(model.named_parameters())
    for name, g in zip(profile.names, profile.weight_grad_norms):
        assert g == pytest.approx(float(np.linalg.norm(params[f"{name}.weight"].grad)), rel=1e-5)
    # The fc's output gradient is dL/dlogits: (softmax - onehot) / N, whose norm is below 1.
    assert 0 < profile.activation_grad_norms[-1] < 1
    g = dict(zip(profile.names, profile.weight_grad_norms))
    assert profile.first_last_ratio() == pytest.approx(np.log10(g["conv1"] / g["layer3.2.conv2"]))
    assert profile.first_last_ratio(convs_only=False) == pytest.approx(np.log10(g["conv1"] / g["fc"]))


@pytest.mark.parametrize("seed", [0, 1])
def test_plain56_gradient_grows_toward_the_input_resnet56_does_not(seed):
    """He et al. / Yang et al. 2019: with BN, a plain net's gradient grows geometrically toward
    the input.  8x8 inputs keep it fast; the slow test repeats it at 16x16 over more seeds."""
    assert _ratio(skip=False, seed=seed, size=8) >= 2
    assert _ratio(skip=True, seed=seed, size=8) <= 1.5


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_gradient_ratio_at_16x16(seed):
    assert _ratio(skip=False, seed=seed, size=16) >= 2
    assert _ratio(skip=True, seed=seed, size=16) <= 1.5


def test_plot_gradient_profile(tmp_path):
    x, y = _random_batch(0, 8, n=8)
    panels = {}
    for depth in (8, 14):
        panels[f"depth {depth}"] = {}
        for label, skip in (("plain", False), ("residual", True)):
            tr.manual_seed(0)
            panels[f"depth {depth}"][label] = gradient_profile(models.cifar_resnet(depth, skip=skip), x, y)
    fig = plot_gradient_profile(panels)
    fig.savefig(tmp_path / "profile.png")
    assert len(fig.axes) == 4
    for ax in fig.axes:
        assert ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain", "residual"]

