"""tinyresnet.interop: torchvision-keyed weights in and out, .npz without pickle, .pth <-> .npz."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyresnet import interop, models


def _model():
    model = models.cifar_resnet20().eval()
    rng = np.random.default_rng(3)
    for name, array in model.state_dict().items():  # non-trivial BN statistics
        if "running" in name:
            array[...] = rng.uniform(0.5, 1.5, array.shape)
    return model


def test_npz_round_trip_gives_identical_logits(tmp_path, rng):
    model = _model()
    path = tmp_path / "weights.npz"
    interop.save_npz(model, path)
    sd = interop.load_npz(path)
    assert list(sd) == list(model.state_dict())
    assert sd["layer1.0.bn1.num_batches_tracked"].dtype == np.int64
    other = models.cifar_resnet20().eval()
    interop.load_weights(other, path)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(other(x), model(x))


def test_npz_is_read_without_pickle(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"conv1.weight": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        interop.load_npz(path)
    with pytest.raises(TypeError, match="only numeric arrays"):
        interop.save_npz({"x": np.array([None], dtype=object)}, tmp_path / "out.npz")


def test_wrong_architecture_is_named(tmp_path):
    path = tmp_path / "cifar20.npz"
    interop.save_npz(models.cifar_resnet20(), path)
    with pytest.raises(ValueError, match=r"missing key 'layer1\.3\.conv1\.weight'"):
        interop.load_weights(models.cifar_resnet32(), path)
    with pytest.raises(ValueError, match="expected a .npz or .pth file"):
        interop.load_weights(models.cifar_resnet20(), tmp_path / "weights.h5")


def test_pth_to_npz_to_model_gives_identical_logits(tmp_path, rng):
    torch = pytest.importorskip("torch")
    model = _model()
    # A torchvision-style checkpoint: tensors, wrapped by DataParallel and a training script.
    state = {"module." + k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pth")
    interop.pth_to_npz(tmp_path / "ckpt.pth", tmp_path / "ckpt.npz")
    loaded = models.cifar_resnet20().eval()
    interop.load_weights(loaded, tmp_path / "ckpt.npz")
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x), model(x))

    # And back: npz -> pth that torch reads with weights_only=True, same tensors.
    interop.npz_to_pth(tmp_path / "ckpt.npz", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert list(back) == list(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back[k].numpy(), v)


def test_torch_state_dict_in_memory_loads_directly(rng):
    torch = pytest.importorskip("torch")
    model = _model()
    tensors = interop.state_dict_to_torch(model.state_dict())
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    other = models.cifar_resnet20().eval()
    interop.load_weights(other, tensors)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(other(x), model(x))


def test_import_does_not_need_torch():
    """With torch made unimportable, tinyresnet and interop's npz path still work."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, tempfile, os\n"
        "from tinyresnet import interop, models\n"
        "path = os.path.join(tempfile.mkdtemp(), 'w.npz')\n"
        "interop.save_npz(models.cifar_resnet20(), path)\n"
        "interop.load_weights(models.cifar_resnet20(), path)\n"
        "try:\n"
        "    interop.pth_to_npz('x.pth', path)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout
    assert "needs torch" in out
