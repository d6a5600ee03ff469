"""Data recipes: the digits spec, the recipe chosen by image size, image-folder splits, and the
preprocessing of eval and predict."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyresnet.data import ArrayDataset, BatchTransform
from tinyresnet.data import transforms as T
from tinyresnet.train.recipes import (
    build_datasets, choose_recipe, eval_dataset, load_image_for,
)

SLICE = Path(__file__).parents[1] / "data" / "cifar10_slice"


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


@pytest.mark.parametrize("recipe", ["imagenet", "cifar"])
def test_unsplit_image_folder_holds_out_a_seeded_disjoint_fraction(tmp_path, recipe):
    root = make_folder(tmp_path / "photos")
    size = 4 if recipe == "imagenet" else None
    bundle = build_datasets("imagefolder", root, image_size=size, val_fraction=0.3, seed=1,
                            recipe=recipe)
    train, val = bundle.train, bundle.test
    # Every image of make_folder has its own grey level: the splits are told apart by it.
    level = {int(img[0, 0, 0]) for img in train.images}, {int(img[0, 0, 0]) for img in val.images}
    assert len(level[0]) == 7 and len(level[1]) == 3 and not level[0] & level[1]
    again, spec = eval_dataset(bundle.spec, split="test")
    np.testing.assert_array_equal(again.images, val.images)
    assert spec == bundle.spec
    x, _ = val[0]
    assert x.shape == (3, 4, 4) if recipe == "imagenet" else (3, 6, 6)
    assert x.dtype == np.float32


def test_split_image_folder_is_used_as_it_is(tmp_path):
    make_folder(tmp_path / "photos" / "train", per_class=3)
    make_folder(tmp_path / "photos" / "val", per_class=2)
    bundle = build_datasets("imagefolder", tmp_path / "photos", image_size=4, recipe="imagenet")
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


def test_the_recipe_goes_by_image_size(tmp_path):
    assert choose_recipe("imagefolder", "auto", 32) == "cifar"
    assert choose_recipe("imagefolder", "auto", 64) == "cifar"
    assert choose_recipe("imagefolder", "auto", 65) == "imagenet"
    assert choose_recipe("imagefolder", "imagenet", 32) == "imagenet"
    assert choose_recipe("imagefolder", "cifar", 500) == "cifar"
    assert choose_recipe("cifar10") == "cifar" and choose_recipe("digits") == "digits"
    with pytest.raises(ValueError, match="the digits have their own recipe"):
        choose_recipe("digits", "cifar")
    with pytest.raises(ValueError, match="unknown recipe 'mnist'"):
        choose_recipe("imagefolder", "mnist")
    big = tmp_path / "big"
    for c, name in enumerate(("a", "b")):
        (big / name).mkdir(parents=True)
        Image.fromarray(np.full((80, 100, 3), c, dtype=np.uint8)).save(big / name / "0.png")
        Image.fromarray(np.full((80, 100, 3), c, dtype=np.uint8)).save(big / name / "1.png")
    bundle = build_datasets("imagefolder", big, image_size=16)
    assert bundle.spec["recipe"] == "imagenet" and bundle.spec["image_size"] == 16


def test_a_32x32_folder_gets_the_cifar_recipe_and_records_it():
    bundle = build_datasets("imagefolder", SLICE, val_fraction=0.1, seed=0)
    spec = bundle.spec
    assert (spec["recipe"], spec["image_size"], spec["resize"]) == ("cifar", 32, 32)
    assert (len(bundle.train), len(bundle.test)) == (180, 20)
    assert isinstance(bundle.train, ArrayDataset) and bundle.train.transform is None
    train_tf, test_tf = bundle.train.batch_transform, bundle.test.batch_transform
    assert isinstance(train_tf, BatchTransform) and train_tf.padding == 4 and not test_tf.random
    # Per-channel statistics of the training split, in [0, 1] units.
    pixels = bundle.train.images.reshape(-1, 3) / 255
    np.testing.assert_allclose(spec["mean"], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(spec["std"], pixels.std(axis=0), rtol=1e-9)
    # Evaluation: no resizing, only normalisation, exactly as the spec says.
    x, _ = bundle.test[0]
    want = T.Normalize(spec["mean"], spec["std"])(T.ToArray()(bundle.test.images[0]))
    np.testing.assert_array_equal(x, want)
    with pytest.raises(ValueError, match="the CIFAR recipe does not resize"):
        build_datasets("imagefolder", SLICE, image_size=28)


def test_eval_and_predict_preprocess_as_training_did(tmp_path):
    spec = build_datasets("imagefolder", SLICE, seed=3).spec
    test, again = eval_dataset(spec, split="test")
    assert again["mean"] == spec["mean"] and again["recipe"] == "cifar"
    path = sorted((SLICE / "cat").iterdir())[0]
    pixels = np.asarray(Image.open(path).convert("RGB"))
    want = T.Normalize(spec["mean"], spec["std"])(T.ToArray()(pixels))
    np.testing.assert_array_equal(load_image_for(path, spec), want)
    # A photo of another size is resized to the training images' size first.
    Image.open(path).resize((64, 48)).save(tmp_path / "big.png")
    assert load_image_for(tmp_path / "big.png", spec).shape == (3, 32, 32)
    # A checkpoint written before recipes existed keeps the ImageNet preprocessing it had.
    legacy = {k: v for k, v in spec.items() if k != "recipe"}
    legacy.update(image_size=32, resize=36)
    assert load_image_for(path, legacy).shape == (3, 32, 32)
    assert not np.array_equal(load_image_for(path, legacy), want)


@pytest.mark.slow
def test_full_cifar10_folder_splits_45k_5k(cifar10_train):
    bundle = build_datasets("imagefolder", cifar10_train)
    assert bundle.spec["recipe"] == "cifar"
    assert (len(bundle.train), len(bundle.test)) == (45_000, 5_000)
