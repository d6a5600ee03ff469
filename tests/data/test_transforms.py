"""Transforms (tinyresnet/data/transforms.py), each on small images whose right answer is written
out by hand, for the three image kinds (PIL, HWC uint8, CHW float)."""
import numpy as np
import pytest
from PIL import Image

import tinyresnet as tr
from tinyresnet.data import transforms as T


def _hwc(rows):
    """A grayscale uint8 (H, W, 1) image from nested lists."""
    return np.array(rows, dtype=np.uint8)[:, :, None]


def _chw(rows):
    return np.array(rows, dtype=np.float32)[None]


GRID = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]


# ---- ToArray and Normalize ----------------------------------------------------------------------
def test_to_array_hwc_uint8():
    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[0, 1] = (255, 51, 0)  # one pixel, three channels
    x = T.ToArray()(img)
    assert x.dtype == np.float32 and x.shape == (3, 2, 3) and x.flags.c_contiguous
    expected = np.zeros((3, 2, 3), dtype=np.float32)
    expected[:, 0, 1] = [1.0, 0.2, 0.0]
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-7)


def test_to_array_pil_rgb_and_gray():
    rgb = Image.new("RGB", (3, 2), color=(255, 0, 51))
    x = T.ToArray()(rgb)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1, 2], [1.0, 0.0, 0.2], atol=1e-7)
    gray = T.ToArray()(Image.fromarray(np.array([[0, 255]], dtype=np.uint8)))
    np.testing.assert_array_equal(gray, np.array([[[0.0, 1.0]]], dtype=np.float32))


def test_to_array_refuses_an_already_converted_array():
    with pytest.raises(TypeError, match="ToArray: .*already converted"):
        T.ToArray()(np.zeros((3, 4, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="ToArray: expected a PIL image or a NumPy array, got list"):
        T.ToArray()([[1, 2]])


def test_normalize_per_channel():
    x = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)]).astype(np.float32)
    y = T.Normalize(mean=(0.5, 0.25), std=(0.5, 0.25))(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0], 0.0)
    np.testing.assert_allclose(y[1], 3.0)  # (1 - 0.25) / 0.25
    np.testing.assert_array_equal(x[1], 1.0)  # not in place


def test_normalize_errors():
    with pytest.raises(ValueError, match="Normalize: mean/std have 3 channels, the image has 1"):
        T.Normalize((0, 0, 0), (1, 1, 1))(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="std must be non-zero"):
        T.Normalize((0,), (0,))
    with pytest.raises(TypeError, match="apply ToArray"):
        T.Normalize((0,), (1,))(np.zeros((2, 2, 1), np.uint8))


# ---- Resize -------------------------------------------------------------------------------------
def test_resize_upsamples_bilinearly():
    # Pixel centres: output column j sits at input coordinate (j + 0.5) / 2 - 0.5 = -0.25, 0.25,
    # 0.75, 1.25; clamped at the borders, [0, 100] becomes [0, 25, 75, 100].
    row = [0, 25, 75, 100]
    img = _hwc([[0, 100], [0, 100]])
    out = T.Resize(4)(img)
    assert out.shape == (4, 4, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 0], [row] * 4)
    out = T.Resize(4)(_chw([[0, 100], [0, 100]]))
    assert out.shape == (1, 4, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [row] * 4, atol=1e-4)
    pil = T.Resize(4)(Image.fromarray(img[:, :, 0]))
    np.testing.assert_array_equal(np.asarray(pil), [row] * 4)


def test_resize_int_matches_the_shorter_side():
    assert T.Resize(5)(np.zeros((10, 20, 3), np.uint8)).shape == (5, 10, 3)
    assert T.Resize(5)(np.zeros((1, 20, 10), np.float32)).shape == (1, 10, 5)
    # The longer side is int(size * long / short), truncated as torchvision does: 256 * 500 / 375
    assert T.Resize(256)(Image.new("RGB", (500, 375))).size == (341, 256)
    assert T.Resize((3, 7))(np.zeros((10, 20), np.uint8)).shape == (3, 7)


def test_resize_constant_image_stays_constant():
    out = T.Resize((5, 3))(np.full((1, 8, 8), 0.25, dtype=np.float64))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, 0.25)


# ---- CenterCrop ---------------------------------------------------------------------------------
def test_center_crop():
    np.testing.assert_array_equal(T.CenterCrop(2)(_hwc(GRID))[:, :, 0], [[6, 7], [10, 11]])
    # (4 - 1) / 2 = 1.5 rounds to 2 (round half to even, as torchvision).
    np.testing.assert_array_equal(T.CenterCrop((1, 3))(_chw(GRID))[0], [[9, 10, 11]])
    pil = T.CenterCrop(2)(Image.fromarray(np.array(GRID, dtype=np.uint8)))
    np.testing.assert_array_equal(np.asarray(pil), [[6, 7], [10, 11]])


def test_center_crop_pads_a_small_image():
    out = T.CenterCrop(4)(_chw([[1, 2], [3, 4]]))
    np.testing.assert_array_equal(out[0], [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]])


# ---- RandomCrop ---------------------------------------------------------------------------------
def test_random_crop_with_padding_covers_every_window():
    img = _chw([[1, 2], [3, 4]])
    padded = [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]]
    windows = {tuple(np.array(padded)[i:i + 2, j:j + 2].ravel())
               for i in range(3) for j in range(3)}
    crop = T.RandomCrop(2, padding=1, rng=np.random.default_rng(0))
    seen = {tuple(crop(img)[0].ravel().astype(int)) for _ in range(200)}
    assert seen == windows


def test_random_crop_position_comes_from_the_generator():
    img = _hwc(GRID)
    out = T.RandomCrop(2, rng=np.random.default_rng(7))(img)[:, :, 0]
    draw = np.random.default_rng(7)
    i, j = draw.integers(0, 3), draw.integers(0, 3)
    np.testing.assert_array_equal(out, np.array(GRID)[i:i + 2, j:j + 2])


def test_random_crop_padding_forms_and_fill():
    crop = T.RandomCrop((2, 4), padding=(0, 1), fill=9, rng=np.random.default_rng(0))
    out = crop(_chw([[1, 2, 3, 4]]))
    assert out.shape == (1, 2, 4)
    assert any(np.array_equal(out[0], r) for r in ([[9, 9, 9, 9], [1, 2, 3, 4]],
                                                   [[1, 2, 3, 4], [9, 9, 9, 9]]))
    crop = T.RandomCrop(4, padding=1, rng=np.random.default_rng(0))
    pil = crop(Image.new("RGB", (2, 2), "white"))
    assert pil.size == (4, 4)


def test_random_crop_too_large():
    with pytest.raises(ValueError, match=r"RandomCrop: crop size \(5, 5\) is larger than"):
        T.RandomCrop(5)(np.zeros((4, 4, 3), np.uint8))


def test_random_transforms_default_to_the_package_generator():
    img = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    crop = T.RandomCrop(3)
    tr.manual_seed(5)
    first = [crop(img) for _ in range(5)]
    tr.manual_seed(5)
    again = [crop(img) for _ in range(5)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert len({a.tobytes() for a in first}) > 1


# ---- RandomHorizontalFlip -----------------------------------------------------------------------
def test_horizontal_flip():
    flip = T.RandomHorizontalFlip(p=1.0)
    np.testing.assert_array_equal(flip(_hwc([[1, 2, 3]]))[:, :, 0], [[3, 2, 1]])
    np.testing.assert_array_equal(flip(_chw([[1, 2, 3]]))[0], [[3, 2, 1]])
    pil = flip(Image.fromarray(np.array([[1, 2, 3]], dtype=np.uint8)))
    np.testing.assert_array_equal(np.asarray(pil), [[3, 2, 1]])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(_chw([[1, 2, 3]]))[0], [[1, 2, 3]])


def test_horizontal_flip_is_drawn_with_probability_p():
    flip = T.RandomHorizontalFlip(p=0.5, rng=np.random.default_rng(1))
    flips = sum(flip(_chw([[1, 2]]))[0, 0, 0] == 2 for _ in range(400))
    draw = np.random.default_rng(1)
    assert flips == sum(draw.random() < 0.5 for _ in range(400))


# ---- RandomResizedCrop --------------------------------------------------------------------------
def test_random_resized_crop_full_scale_is_a_resize():
    img = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    out = T.RandomResizedCrop(3, scale=(1.0, 1.0), ratio=(1.0, 1.0))(img)
    np.testing.assert_array_equal(out, T.Resize((3, 3))(img))


def test_random_resized_crop_quarter_area_is_a_window():
    # scale 1/4 and ratio 1 on 4x4: always a 2x2 window, and resizing 2x2 to 2x2 changes nothing.
    crop = T.RandomResizedCrop(2, scale=(0.25, 0.25), ratio=(1.0, 1.0),
                               rng=np.random.default_rng(3))
    windows = {tuple(np.array(GRID)[i:i + 2, j:j + 2].ravel()) for i in range(3) for j in range(3)}
    seen = {tuple(crop(_chw(GRID))[0].ravel().astype(int)) for _ in range(200)}
    assert seen == windows


def test_random_resized_crop_falls_back_to_a_centre_crop():
    # A 1x8 strip cannot hold a window of ratio in [3/4, 4/3] with scale >= 0.5: ten misses, then
    # the centre crop of ratio 4/3: h = 1, w = round(4/3) = 1, at column (8 - 1) // 2 = 3.
    crop = T.RandomResizedCrop(1, scale=(0.5, 1.0))
    assert crop.get_params(_chw([list(range(8))])) == (0, 3, 1, 1)
    np.testing.assert_array_equal(crop(_chw([list(range(8))])), [[[3.0]]])


# ---- Compose and argument checks ----------------------------------------------------------------
def test_compose_applies_in_order():
    pipeline = T.Compose([T.CenterCrop(2), T.ToArray(), T.Normalize((0.5,), (0.5,))])
    x = pipeline(_hwc([[0, 0, 0, 0], [0, 255, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    np.testing.assert_allclose(x, [[[1.0, -1.0], [-1.0, -1.0]]])
    assert "CenterCrop" in repr(pipeline)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: T.Resize(0), "Resize: size must be positive"),
        (lambda: T.CenterCrop((2, 0)), "CenterCrop: size must be a positive int"),
        (lambda: T.RandomCrop(2, padding=(1, 2, 3)), "RandomCrop: padding must be"),
        (lambda: T.RandomHorizontalFlip(p=2), "p must be in"),
        (lambda: T.RandomResizedCrop(2, scale=(1.0, 0.5)), "scale and ratio must be increasing"),
        (lambda: T.Compose([1]), "every transform must be callable"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_wrong_image_kind_is_named():
    with pytest.raises(TypeError, match=r"CenterCrop: expected a uint8 \(H, W\[, C\]\) image or a "
                                        r"float \(C, H, W\) array, got a int64 array"):
        T.CenterCrop(2)(np.zeros((4, 4), dtype=np.int64))
