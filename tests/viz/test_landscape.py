"""Loss landscape slices (Li et al. 2018): filter-normalised directions, BN in eval mode."""
import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models, nn
from tinyresnet.viz.landscape import (
    evaluate, filter_normalized_direction, loss_slice_1d, loss_slice_2d, plot_loss_slice_1d,
    plot_loss_slice_2d,
)


@pytest.fixture
def model_and_data(rng):
    model = models.cifar_resnet(8, in_channels=1, shortcut="B")
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    with nn.no_grad():  # a few training-mode passes give BN running statistics worth evaluating
        for _ in range(3):
            model(x)
    return model, x, y


def test_direction_is_filter_normalised(model_and_data):
    model, _, _ = model_and_data
    d = filter_normalized_direction(model, seed=3)
    params = dict(model.named_parameters())
    assert set(d) == set(params)
    for name, p in params.items():
        assert d[name].shape == p.shape and d[name].dtype == p.dtype
        if p.data.ndim < 2:  # biases, BN weight and bias: left out
            assert not np.any(d[name]), name
        else:
            per_filter = [np.linalg.norm(a.reshape(len(a), -1), axis=1) for a in (d[name], p.data)]
            np.testing.assert_allclose(*per_filter, rtol=1e-5, err_msg=name)
    again, other = filter_normalized_direction(model, seed=3), filter_normalized_direction(model, 4)
    assert all(np.array_equal(d[k], again[k]) for k in d)
    assert not np.array_equal(d["conv1.weight"], other["conv1.weight"])


def test_slices_pass_through_the_model_and_restore_it(model_and_data):
    model, x, y = model_and_data
    before = {k: v.copy() for k, v in model.state_dict().items()}
    rng_state = tr.random.get_rng_state()
    one = loss_slice_1d(model, x, y, alphas=[-0.5, 0.0, 0.5], seed=1)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)  # weights and BN statistics
    assert model.training and tr.random.get_rng_state() == rng_state
    model.eval()
    loss0, acc0 = evaluate(model, x, y)
    model.train()
    assert one.loss[1] == pytest.approx(loss0, rel=1e-6) and one.accuracy[1] == acc0
    assert one.loss[0] != pytest.approx(loss0, rel=1e-3)

    two = loss_slice_2d(model, x, y, alphas=[-0.5, 0.0, 0.5], betas=[0.0, 0.25], seed=1)
    assert two.loss.shape == (2, 3)
    # Row beta = 0 of the plane is the 1-D slice along the plane's first direction (same seed).
    np.testing.assert_allclose(two.loss[0], one.loss, rtol=1e-6)


def test_plots(tmp_path, model_and_data):
    model, x, y = model_and_data
    twin = models.cifar_resnet(8, in_channels=1, skip=False)
    slices_1d = {"ResNet-8": loss_slice_1d(model, x, y, alphas=np.linspace(-1, 1, 5)),
                 "plain-8": loss_slice_1d(twin, x, y, alphas=np.linspace(-1, 1, 5))}
    fig = plot_loss_slice_1d(slices_1d)
    fig.savefig(tmp_path / "slice1d.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ResNet-8", "plain-8"]
    grid = np.linspace(-1, 1, 4)
    slices_2d = {"ResNet-8": loss_slice_2d(model, x, y, alphas=grid),
                 "plain-8": loss_slice_2d(twin, x, y, alphas=grid)}
    fig = plot_loss_slice_2d(slices_2d)
    fig.savefig(tmp_path / "slice2d.png")
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(panels) == 2
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
