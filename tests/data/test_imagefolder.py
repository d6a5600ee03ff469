"""ImageFolder (tinyresnet/data/imagefolder.py) on a small folder of PNG/JPEG files generated here,
and its errors: missing folder, no class folders, empty class folder, unreadable image."""
import numpy as np
import pytest
from PIL import Image

from tinyresnet.data import DataLoader, ImageFolder, load_image
from tinyresnet.data import transforms as T


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path):
    """cat/ has two RGB PNGs, dog/ a grayscale PNG and an RGB JPEG in a sub-folder; plus files
    and folders that are not samples."""
    root = tmp_path / "pets"
    _save(root / "cat" / "b.png", np.full((6, 8, 3), (255, 0, 0), np.uint8))
    _save(root / "cat" / "a.png", np.full((6, 8, 3), (0, 255, 0), np.uint8))
    _save(root / "dog" / "gray.png", np.full((5, 5), 128, np.uint8))
    _save(root / "dog" / "more" / "c.JPG", np.full((8, 8, 3), 200, np.uint8))
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "cat" / ".hidden.png").write_bytes(b"")
    _save(root / ".ipynb_checkpoints" / "x.png", np.zeros((2, 2), np.uint8))
    (root / "README").write_text("a file beside the class folders")
    return root


def test_classes_samples_and_decoding(folder):
    ds = ImageFolder(folder)
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert [(p.relative_to(folder).as_posix(), y) for p, y in ds.samples] == [
        ("cat/a.png", 0), ("cat/b.png", 0), ("dog/gray.png", 1), ("dog/more/c.JPG", 1)]
    assert ds.targets == [0, 0, 1, 1] and len(ds) == 4
    image, label = ds[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (8, 6)
    np.testing.assert_array_equal(np.asarray(image)[0, 0], (0, 255, 0))
    gray, _ = ds[2]
    assert gray.mode == "RGB"  # grayscale files come out as RGB, as torchvision's loader
    np.testing.assert_array_equal(np.asarray(gray)[2, 2], (128, 128, 128))


def test_the_seed_example_pipeline_through_the_loader(folder):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ds = ImageFolder(folder, transform=T.Compose([
        T.Resize(16), T.CenterCrop(12), T.ToArray(), T.Normalize(mean, std)]))
    batches = list(DataLoader(ds, batch_size=3, shuffle=True, seed=0, num_workers=2))
    assert [x.shape for x, _ in batches] == [(3, 3, 12, 12), (1, 3, 12, 12)]
    labels = sorted(int(v) for _, y in batches for v in y)
    assert labels == [0, 0, 1, 1]
    pipeline = T.Compose([T.CenterCrop(2), T.ToArray(), T.Normalize(mean, std)])
    red = pipeline(load_image(ds.samples[1][0]))
    np.testing.assert_allclose(red[:, 0, 0], (np.array([1, 0, 0]) - mean) / std, rtol=1e-5)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ImageFolder: '.*nowhere' does not exist; "
                                                r"expected a folder with one sub-folder"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ImageFolder(tmp_path / "file.png")


def test_no_class_folders(tmp_path):
    _save(tmp_path / "loose.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match="ImageFolder: no class sub-folders in"):
        ImageFolder(tmp_path)


def test_empty_class_folder(folder):
    (folder / "emu").mkdir()
    (folder / "emu" / "readme.txt").write_text("no pictures yet")
    with pytest.raises(FileNotFoundError, match=r"class folder '.*emu' holds no image files"):
        ImageFolder(folder)


def test_unreadable_image_names_the_file(folder):
    bad = folder / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = ImageFolder(folder)
    index = [p for p, _ in ds.samples].index(bad)
    with pytest.raises(ValueError, match=r"ImageFolder: cannot read image '.*dog/broken.png'"):
        ds[index]
    # Through the prefetching loader the error reaches the training loop, still naming the file.
    loader = DataLoader(ImageFolder(folder, transform=T.Compose([T.Resize((4, 4)), T.ToArray()])),
                        batch_size=2)
    with pytest.raises(ValueError, match="broken.png"):
        list(loader)
