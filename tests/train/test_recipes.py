"""Data recipes: the digits spec, image-folder splits, and the preprocessing of predict."""
import numpy as np
import pytest
from PIL import Image

from tinyresnet.train.recipes import build_datasets, eval_dataset, load_image_for


def make_folder(root, classes=("a", "b"), per_class=5):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((6, 6, 3), 40 * c + i, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def test_digits_spec_and_transforms():
    bundle = build_datasets("digits")
    spec = bundle.spec
    assert (spec["dataset"], spec["in_channels"], spec["image_size"]) == ("digits", 1, 8)
    assert bundle.classes == [str(d) for d in range(10)]
    assert spec["mean"][0] == pytest.approx(float(bundle.train.images.mean()))
    x, _ = bundle.test[0]
    expected = (bundle.test.images[0] - spec["mean"][0]) / spec["std"][0]
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    assert x.dtype == np.float32 and x.shape == (1, 8, 8)


def test_unsplit_image_folder_holds_out_a_seeded_disjoint_fraction(tmp_path):
    root = make_folder(tmp_path / "photos")
    bundle = build_datasets("imagefolder", root, image_size=4, val_fraction=0.3, seed=1)
    train, val = bundle.train, bundle.test
    assert len(train) + len(val) == 10 and len(val) == 3
    assert not set(train.indices) & set(val.indices)
    again, _ = eval_dataset(bundle.spec, split="test")
    assert again.indices == val.indices
    x, _ = val[0]
    assert x.shape == (3, 4, 4) and x.dtype == np.float32


def test_split_image_folder_is_used_as_it_is(tmp_path):
    make_folder(tmp_path / "photos" / "train", per_class=3)
    make_folder(tmp_path / "photos" / "val", per_class=2)
    bundle = build_datasets("imagefolder", tmp_path / "photos", image_size=4)
    assert (len(bundle.train), len(bundle.test)) == (6, 4)
    assert bundle.classes == ["a", "b"]


def test_missing_folder_and_unknown_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_datasets("imagefolder", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs --data"):
        build_datasets("cifar10")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        build_datasets("mnist")


def test_digit_images_are_read_light_on_dark_whatever_their_polarity(tmp_path):
    spec = build_datasets("digits").spec
    stroke = np.zeros((32, 32), dtype=np.uint8)
    stroke[4:28, 14:18] = 255
    Image.fromarray(stroke).save(tmp_path / "light_on_dark.png")
    Image.fromarray(255 - stroke).save(tmp_path / "dark_on_light.png")
    a = load_image_for(tmp_path / "light_on_dark.png", spec)
    b = load_image_for(tmp_path / "dark_on_light.png", spec)
    np.testing.assert_allclose(a, b, atol=1e-6)
    # A 4-pixel stroke over columns 14..17 covers half of 8x8 columns 3 and 4, rows 1..6.
    raw = a[0] * spec["std"][0] + spec["mean"][0]
    assert raw[1:7, 3:5] == pytest.approx(np.full((6, 2), 0.5))
    assert raw[0].max() == pytest.approx(0.0, abs=1e-6)
