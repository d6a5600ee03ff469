"""The decode-once image cache (tinyresnet/data/cache.py): built, reused while the folder is
unchanged, rebuilt when a file changes, written atomically, never pickled; and the committed
CIFAR-10 slice (tests/data/cifar10_slice) it is exercised on."""
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyresnet.data import ImageFolder, cache
from tinyresnet.data.cache import cache_path, default_cache_dir, folder_manifest, load_folder

SLICE = Path(__file__).parent / "cifar10_slice"


def make_folder(root, per_class=3, size=(5, 4)):
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full(size[::-1] + (3,), 50 * c + 10 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_built_then_reused_without_decoding(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "photos")
    images, labels, folder, built = load_folder(root, tmp_path / "cache", progress=False)
    assert built and cache_path(root, tmp_path / "cache").is_file()
    assert images.shape == (6, 4, 5, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    for image, (path, _) in zip(images, folder.samples):
        np.testing.assert_array_equal(image, np.asarray(Image.open(path).convert("RGB")))

    def no_decoding(path):
        raise AssertionError(f"decoded {path} although the cache is current")

    monkeypatch.setattr(cache, "load_image", no_decoding)
    again, labels_again, _, built = load_folder(root, tmp_path / "cache", progress=False)
    assert not built
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(labels_again, labels)


@pytest.mark.parametrize("change", ["rewrite", "touch", "add", "remove", "rename"])
def test_rebuilt_when_a_file_changes(tmp_path, change):
    root = make_folder(tmp_path / "photos")
    before = folder_manifest(ImageFolder(root))
    load_folder(root, tmp_path / "cache", progress=False)
    target = root / "dog" / "1.png"
    if change == "rewrite":
        Image.fromarray(np.full((4, 5, 3), 200, dtype=np.uint8)).save(target)
    elif change == "touch":
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    elif change == "add":
        Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(root / "dog" / "9.png")
    elif change == "remove":
        target.unlink()
    else:
        target.rename(root / "dog" / "7.png")
    assert folder_manifest(ImageFolder(root)) != before
    images, _, folder, built = load_folder(root, tmp_path / "cache", progress=False)
    assert built
    for image, (path, _) in zip(images, folder.samples):
        np.testing.assert_array_equal(image, np.asarray(Image.open(path).convert("RGB")))


def test_the_file_holds_plain_arrays_and_loads_without_pickle(tmp_path):
    root = make_folder(tmp_path / "photos")
    load_folder(root, tmp_path / "cache", progress=False)
    path = cache_path(root, tmp_path / "cache")
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["classes.npy", "format.npy", "images.npy",
                                              "labels.npy", "manifest.npy"]
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[k].dtype != object for k in archive.files)
        assert archive["classes"].tolist() == ["cat", "dog"]
    # Atomic write: nothing but the finished file is left in the cache folder.
    assert os.listdir(tmp_path / "cache") == [path.name]


def test_where_the_cache_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYRESNET_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("TINYRESNET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tinyresnet"
    # One file per folder: two folders of the same name do not share it.
    a, b = cache_path(tmp_path / "x" / "train"), cache_path(tmp_path / "y" / "train")
    assert a != b and a.name.startswith("train-") and a.parent == default_cache_dir()


def test_mixed_sizes_and_unwritable_cache_are_explained(tmp_path):
    root = make_folder(tmp_path / "photos")
    Image.fromarray(np.zeros((6, 6, 3), dtype=np.uint8)).save(root / "dog" / "big.png")
    with pytest.raises(ValueError, match=r"big.png' is 6x6 but .* is 5x4"):
        load_folder(root, tmp_path / "cache", progress=False)
    (root / "dog" / "big.png").unlink()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write .* set TINYRESNET_CACHE or --cache-dir"):
        load_folder(root, blocker / "cache", progress=False)


def test_the_committed_cifar_slice():
    images, labels, folder, _ = load_folder(SLICE, progress=False)
    assert images.shape == (200, 32, 32, 3)
    assert folder.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                              "horse", "ship", "truck"]
    np.testing.assert_array_equal(np.bincount(labels), [20] * 10)
