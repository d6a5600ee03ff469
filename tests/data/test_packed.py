"""Packed image folders (tinyresnet/data/packed.py): the files' bytes in one .npz, decoded back into
exactly what decoding each file gives, in one process or several; and its errors."""
import numpy as np
import pytest
from PIL import Image

from tinyresnet.data import ImageFolder, load_image
from tinyresnet.data.packed import is_packed, pack_folder, unpack


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=90)


@pytest.fixture
def folder(tmp_path):
    """Three classes of random 6x5 JPEGs and PNGs (random, so a swapped image would show)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for c, name in enumerate(["bird", "cat", "dog"]):
        for i in range(3 + c):
            suffix = "png" if i % 2 else "jpg"
            _save(root / name / f"{i}.{suffix}", rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    return root


@pytest.mark.parametrize("processes", [1, 2])
def test_unpack_gives_every_image_as_decoding_its_file(folder, tmp_path, processes):
    out = tmp_path / "packed.npz"
    assert pack_folder(folder, out) == 12 and is_packed(out)
    images, labels, classes = unpack(out, processes=processes)
    ref = ImageFolder(folder)
    assert classes == ref.classes and labels.tolist() == ref.targets
    assert images.shape == (12, 5, 6, 3) and images.dtype == np.uint8
    for i, (path, _) in enumerate(ref.samples):
        np.testing.assert_array_equal(images[i], np.asarray(load_image(path)), err_msg=str(path))


def test_the_file_holds_no_pickles_and_the_bytes_unchanged(folder, tmp_path):
    out = tmp_path / "packed.npz"
    pack_folder(folder, out)
    with np.load(out, allow_pickle=False) as archive:
        data, offsets, names = archive["data"], archive["offsets"], archive["names"]
    first = ImageFolder(folder).samples[0][0]
    assert data[offsets[0]:offsets[1]].tobytes() == first.read_bytes()
    assert names[0] == "bird/0.jpg"


def test_errors_name_the_file(folder, tmp_path):
    (folder / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "packed.npz"
    pack_folder(folder, out)
    with pytest.raises(ValueError, match="cannot decode 'cat/broken.jpg'"):
        unpack(out, processes=1)
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros(3))
    assert not is_packed(other) and not is_packed(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="not a packed image folder"):
        unpack(other)


def test_images_of_several_sizes_are_refused(folder, tmp_path):
    _save(folder / "dog" / "big.png", np.zeros((9, 9, 3), np.uint8))
    out = tmp_path / "packed.npz"
    pack_folder(folder, out)
    with pytest.raises(ValueError, match="of one size|several sizes"):
        unpack(out, processes=1)


@pytest.mark.skipif(not __import__("pathlib").Path(__file__).parents[3].joinpath(
    "shared/data/cifar10/train").is_dir(), reason="the CIFAR-10 folder ../shared/data/cifar10 is absent")
@pytest.mark.slow
def test_cifar10_round_trip(tmp_path):
    root = __import__("pathlib").Path(__file__).parents[3] / "shared/data/cifar10/train"
    out = tmp_path / "cifar.npz"
    assert pack_folder(root, out) == 50000
    images, labels, _ = unpack(out)
    ref = ImageFolder(root)
    for i in (0, 4999, 25000, 49999):
        np.testing.assert_array_equal(images[i], np.asarray(load_image(ref.samples[i][0])))
        assert labels[i] == ref.targets[i]
