"""Packed image folders (tinyresnet/data/packed.py): the files' bytes in one .npz, extracted back
byte for byte; and its errors."""
import numpy as np
import pytest
from PIL import Image

from tinyresnet.data import ImageFolder
from tinyresnet.data.packed import extract, pack_folder


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=90)


@pytest.fixture
def folder(tmp_path):
    """Three classes of random JPEGs and PNGs, one in a sub-folder, plus a file that is no image."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for c, name in enumerate(["bird", "cat", "dog"]):
        for i in range(3 + c):
            suffix = "png" if i % 2 else "jpg"
            _save(root / name / f"{i}.{suffix}", rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    _save(root / "dog" / "more" / "x.png", np.zeros((5, 6, 3), np.uint8))
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


def test_extract_gives_back_every_image_file_byte_for_byte(folder, tmp_path):
    packed = tmp_path / "packed.npz"
    assert pack_folder(folder, packed) == 13
    assert extract(packed, tmp_path / "out") == 13
    original, copy = ImageFolder(folder), ImageFolder(tmp_path / "out")
    assert copy.classes == original.classes and copy.targets == original.targets
    for (a, _), (b, _) in zip(original.samples, copy.samples):
        assert a.relative_to(folder) == b.relative_to(tmp_path / "out")
        assert a.read_bytes() == b.read_bytes()
    assert not (tmp_path / "out" / "cat" / "notes.txt").exists()


def test_the_file_holds_plain_arrays(folder, tmp_path):
    packed = tmp_path / "packed.npz"
    pack_folder(folder, packed)
    with np.load(packed, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["data", "names", "offsets"]
        assert archive["names"][0] == "bird/0.jpg" and archive["offsets"][-1] == archive["data"].size


def test_errors(folder, tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros(3))
    with pytest.raises(ValueError, match="not a packed image folder"):
        extract(other, tmp_path / "out")
    evil = tmp_path / "evil.npz"
    np.savez(evil, data=np.zeros(2, np.uint8), offsets=np.array([0, 2]), names=np.array(["../x.jpg"]))
    with pytest.raises(ValueError, match="outside the folder"):
        extract(evil, tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        pack_folder(tmp_path / "absent", tmp_path / "p.npz")


@pytest.mark.slow
def test_cifar10_round_trip(tmp_path, cifar10_train):
    packed = tmp_path / "cifar.npz"
    assert pack_folder(cifar10_train, packed) == 50000
    assert extract(packed, tmp_path / "train") == 50000
    original = ImageFolder(cifar10_train).samples
    for i in (0, 4999, 25000, 49999):
        copy = tmp_path / "train" / original[i][0].relative_to(cifar10_train)
        assert copy.read_bytes() == original[i][0].read_bytes()


def test_the_cli_packs_and_extracts(folder, tmp_path, capsys):
    from tinyresnet.cli import main

    assert main(["data", "pack", str(folder), str(tmp_path / "p.npz")]) == 0
    assert main(["data", "extract", str(tmp_path / "p.npz"), str(tmp_path / "out")]) == 0
    assert "13 image files" in capsys.readouterr().out
    assert len(ImageFolder(tmp_path / "out")) == 13
    assert main(["data", "extract", str(tmp_path / "absent.npz"), str(tmp_path / "o")]) == 2
    assert "absent.npz' is not a file" in capsys.readouterr().err
