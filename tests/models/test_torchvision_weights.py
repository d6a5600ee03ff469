"""ResNeXt checkpoints in torchvision's layout (.pth files, as torch.save writes them) load into
tinyresnet's ResNeXts through interop, and give the same logits as the torch network they came from.

torchvision is not a dependency: the torch networks are the plain-torch rebuild of its resnet.py in
_torch_reference.py, whose state dicts have torchvision's keys.
"""
import numpy as np
import pytest

from tinyresnet import backend, interop, models

torch = pytest.importorskip("torch")

from ._torch_reference import Bottleneck, ResNet  # noqa: E402  (needs torch)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


RESNEXTS = {
    "resnext50_32x4d": ([3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": ([3, 4, 23, 3], 32, 8),
    "resnext101_64x4d": ([3, 4, 23, 3], 64, 4),
}


def _torch_resnext(name, num_classes=1000):
    layers, groups, width = RESNEXTS[name]
    return ResNet(Bottleneck, layers, num_classes, groups=groups, width_per_group=width)


@pytest.mark.parametrize("name", sorted(RESNEXTS))
def test_state_dict_layout_equals_torchvisions(name, skip_init):
    with torch.device("meta"):  # shapes only, no memory
        theirs = _torch_resnext(name).state_dict()
    ours = models.get_model(name).state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        assert tuple(value.shape) == tuple(theirs[key].shape), key


def _check_pth_round_trip(theirs, make_ours, tmp_path, rng):
    torch.manual_seed(0)
    theirs = theirs.double()
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for name, tensor in theirs.state_dict().items():
            if name.endswith(("running_mean", "bias")) and not name.startswith("fc"):
                tensor.copy_(torch.from_numpy(rng.normal(0, 0.1, tuple(tensor.shape))))
            elif name.endswith("running_var"):
                tensor.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, tuple(tensor.shape))))
    path = tmp_path / "resnext.pth"
    torch.save(theirs.state_dict(), path)

    previous = backend.default_dtype()
    backend.set_default_dtype(np.float64)  # built in float64: no cast of (maybe uninitialised) memory
    try:
        ours = make_ours()
    finally:
        backend.set_default_dtype(previous)
    missing, unexpected = interop.load_weights(ours, path)
    assert (missing, unexpected) == ([], [])
    x = rng.standard_normal((2, 3, 32, 32))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-10, atol=1e-12)


def test_pth_checkpoint_loads_and_gives_torchs_logits(tmp_path, rng, skip_init):
    """A one-block-per-stage ResNeXt 32x4d (the full ones: below, slow); every weight of ours
    comes from the file, so it is built without drawing its own."""
    _check_pth_round_trip(
        ResNet(Bottleneck, [1, 1, 1, 1], 10, groups=32, width_per_group=4),
        lambda: models.ResNet(models.Bottleneck, [1, 1, 1, 1], num_classes=10, groups=32,
                              width_per_group=4),
        tmp_path, rng)


@pytest.mark.slow
def test_resnext50_32x4d_pth_checkpoint(tmp_path, rng):
    _check_pth_round_trip(_torch_resnext("resnext50_32x4d", num_classes=10),
                          lambda: models.resnext50_32x4d(num_classes=10), tmp_path, rng)
