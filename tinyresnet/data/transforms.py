"""Image transforms, named and behaving as torchvision's: Compose, Resize, CenterCrop, RandomCrop,
RandomResizedCrop, RandomHorizontalFlip, ToArray (torchvision's ToTensor), Normalize.

Three kinds of image go in, and each transform gives back the kind it got:

- a ``PIL.Image.Image`` (what ImageFolder decodes);
- a ``uint8`` array, ``(H, W, C)`` or ``(H, W)``: pixels as decoded (raw CIFAR samples);
- a floating array ``(C, H, W)``: what ``ToArray`` produces (and the built-in digits).

The dtype tells the layout apart: uint8 arrays are HWC images, float arrays are CHW.  ImageNet-style
evaluation is ``Compose([Resize(256), CenterCrop(224), ToArray(), Normalize(mean, std)])``; CIFAR
training is ``Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), ToArray(), ...])``.

Randomness: a random transform draws from the ``numpy.random.Generator`` it was given (``rng=``);
without one it draws from the generator the DataLoader sets up for the sample being loaded (one
per sample, derived from the loader's seed, the epoch and the sample's position, so the
augmentation is the same with or without prefetch and after a resume), and outside a loader from
the package generator ``tinyresnet.random.get_rng()``.
"""
import math
import threading
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps

from ..random import get_rng

__all__ = [
    "Compose", "Resize", "CenterCrop", "RandomCrop", "RandomResizedCrop", "RandomHorizontalFlip",
    "ToArray", "Normalize",
]

_local = threading.local()


@contextmanager
def _sample_seed(seed_sequence):
    """Within this block (in this thread) random transforms without an ``rng`` draw from a
    generator seeded by ``seed_sequence``, created on the first draw.  Used by the DataLoader."""
    previous = getattr(_local, "state", None)
    _local.state = [seed_sequence, None]
    try:
        yield
    finally:
        _local.state = previous


def _generator(rng):
    """The generator a random transform draws from (see the module docstring)."""
    if rng is not None:
        return rng
    state = getattr(_local, "state", None)
    if state is None:
        return get_rng()
    if state[1] is None:
        state[1] = np.random.default_rng(state[0])
    return state[1]


# ---- the three image kinds --------------------------------------------------------------------
def _kind(img, where):
    """'pil', 'hwc' (uint8 array) or 'chw' (float array); TypeError for anything else."""
    if isinstance(img, Image.Image):
        return "pil"
    if isinstance(img, np.ndarray):
        if img.dtype == np.uint8 and img.ndim in (2, 3):
            return "hwc"
        if img.dtype.kind == "f" and img.ndim == 3:
            return "chw"
        raise TypeError(
            f"{where}: expected a uint8 (H, W[, C]) image or a float (C, H, W) array, got a "
            f"{img.dtype} array of shape {img.shape}"
        )
    raise TypeError(f"{where}: expected a PIL image or a NumPy array, got {type(img).__name__}")


def _size(img, where):
    """(H, W) of an image of any kind."""
    kind = _kind(img, where)
    if kind == "pil":
        return img.height, img.width
    return img.shape[:2] if kind == "hwc" else img.shape[1:]


def _crop(img, top, left, height, width):
    """The (height, width) window at (top, left), which lies inside the image."""
    if isinstance(img, Image.Image):
        return img.crop((left, top, left + width, top + height))
    if img.dtype == np.uint8:
        return img[top:top + height, left:left + width].copy()
    return img[:, top:top + height, left:left + width].copy()


def _pad(img, left, top, right, bottom, fill):
    """Pad with the constant ``fill`` on each side."""
    if isinstance(img, Image.Image):
        return ImageOps.expand(img, border=(left, top, right, bottom), fill=fill)
    # Allocate and copy: several times faster than np.pad on the small images augmented per sample.
    hwc = img.dtype == np.uint8
    height, width = img.shape[:2] if hwc else img.shape[1:]
    size = (height + top + bottom, width + left + right)
    out = np.full(size + img.shape[2:] if hwc else img.shape[:1] + size, fill, dtype=img.dtype)
    window = (slice(top, top + height), slice(left, left + width))
    out[window if hwc else (slice(None),) + window] = img
    return out


def _resize(img, height, width):
    """Bilinear resize through Pillow (antialiased when shrinking, as torchvision on PIL images)."""
    bilinear = Image.Resampling.BILINEAR
    if isinstance(img, Image.Image):
        return img.resize((width, height), bilinear)
    if img.dtype == np.uint8:
        if img.ndim == 2 or img.shape[2] == 3:
            return np.array(Image.fromarray(img).resize((width, height), bilinear))
        # Pillow has no mode for other channel counts (and would premultiply RGBA): one at a time.
        return np.stack([_resize(img[:, :, c], height, width) for c in range(img.shape[2])], axis=2)
    # Pillow resizes float images one 32-bit channel ("F" mode) at a time.
    channels = [
        np.asarray(Image.fromarray(c.astype(np.float32)).resize((width, height), bilinear))
        for c in img
    ]
    return np.stack(channels).astype(img.dtype, copy=False)


def _pair(size, where):
    """An int or (h, w) pair as a (h, w) tuple of positive ints."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in pair):
        raise ValueError(f"{where}: size must be a positive int or (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


# ---- the transforms ---------------------------------------------------------------------------
class Compose:
    """Apply transforms one after another: ``Compose([t1, t2])(img) == t2(t1(img))``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {t!r}")

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return "Compose(\n" + "".join(f"    {t!r},\n" for t in self.transforms) + ")"


class Resize:
    """Resize bilinearly to ``(height, width)``, or, for an int, so that the shorter side becomes
    ``size`` and the longer keeps the aspect ratio (``int(size * long / short)``, as torchvision).
    """

    def __init__(self, size):
        self.size = size if isinstance(size, (int, np.integer)) else _pair(size, "Resize")
        if isinstance(self.size, (int, np.integer)) and self.size <= 0:
            raise ValueError(f"Resize: size must be positive, got {size}")

    def __call__(self, img):
        height, width = _size(img, "Resize")
        if isinstance(self.size, tuple):
            new_height, new_width = self.size
        elif height <= width:
            new_height, new_width = self.size, int(self.size * width / height)
        else:
            new_height, new_width = int(self.size * height / width), self.size
        return _resize(img, new_height, new_width)

    def __repr__(self):
        return f"Resize(size={self.size})"


class CenterCrop:
    """Crop the central ``size`` window (top = round((H - h) / 2), as torchvision); an image
    smaller than the window is first padded with zeros."""

    def __init__(self, size):
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img):
        height, width = _size(img, "CenterCrop")
        crop_height, crop_width = self.size
        if crop_height > height or crop_width > width:
            pad_h, pad_w = max(crop_height - height, 0), max(crop_width - width, 0)
            img = _pad(img, pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2, 0)
            height, width = height + pad_h, width + pad_w
        top = int(round((height - crop_height) / 2.0))
        left = int(round((width - crop_width) / 2.0))
        return _crop(img, top, left, crop_height, crop_width)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomCrop:
    """Pad by ``padding`` (constant ``fill``), then crop a ``size`` window at a uniformly random
    position: the CIFAR augmentation of the ResNet paper is ``RandomCrop(32, padding=4)``.

    Parameters
    ----------
    size : int or (h, w)
    padding : None, int (every side), (left/right, top/bottom) or (left, top, right, bottom)
    fill : the padding value (in the image's own units: 0..255 for uint8, as is for floats)
    rng : numpy Generator, or None (see the module docstring)
    """

    def __init__(self, size, padding=None, fill=0, rng=None):
        self.size = _pair(size, "RandomCrop")
        if padding is None:
            padding = (0, 0, 0, 0)
        elif isinstance(padding, (int, np.integer)):
            padding = (padding,) * 4
        elif len(padding) == 2:
            padding = (padding[0], padding[1], padding[0], padding[1])
        padding = tuple(int(p) for p in padding)
        if len(padding) != 4 or min(padding) < 0:
            raise ValueError(
                "RandomCrop: padding must be a non-negative int or a tuple of 2 or 4 of them, got "
                f"{padding!r}"
            )
        self.padding, self.fill, self.rng = padding, fill, rng

    def __call__(self, img):
        if any(self.padding):
            img = _pad(img, *self.padding, self.fill)
        height, width = _size(img, "RandomCrop")
        crop_height, crop_width = self.size
        if crop_height > height or crop_width > width:
            raise ValueError(
                f"RandomCrop: crop size {self.size} is larger than the (padded) image "
                f"{(height, width)}"
            )
        if (crop_height, crop_width) == (height, width):
            return img
        rng = _generator(self.rng)
        top = int(rng.integers(0, height - crop_height + 1))
        left = int(rng.integers(0, width - crop_width + 1))
        return _crop(img, top, left, crop_height, crop_width)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomResizedCrop:
    """Crop a random window of random area (``scale`` of the image) and aspect ratio (``ratio``,
    drawn log-uniformly), then resize it to ``size``: torchvision's Inception-style augmentation,
    with the same ten tries and the same centre-crop fallback."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), rng=None):
        self.size = _pair(size, "RandomResizedCrop")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        if not (0 < self.scale[0] <= self.scale[1] and 0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(
                "RandomResizedCrop: scale and ratio must be increasing positive pairs, got "
                f"scale={scale}, ratio={ratio}"
            )
        self.rng = rng

    def get_params(self, img):
        """(top, left, height, width) of the window to crop."""
        height, width = _size(img, "RandomResizedCrop")
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        rng = _generator(self.rng)
        for _ in range(10):
            target_area = area * rng.uniform(self.scale[0], self.scale[1])
            aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                return top, int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        top, left, h, w = self.get_params(img)
        return _resize(_crop(img, top, left, h, w), *self.size)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p=0.5, rng=None):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p, self.rng = p, rng

    def __call__(self, img):
        kind = _kind(img, "RandomHorizontalFlip")
        if not _generator(self.rng).random() < self.p:
            return img
        if kind == "pil":
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.ascontiguousarray(img[:, ::-1] if kind == "hwc" else img[:, :, ::-1])

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class ToArray:
    """A PIL image or an HWC uint8 array to a CHW float32 array in [0, 1]: ``x = pixel / 255``.

    Grayscale gives one channel; PIL modes other than L, RGB and RGBA are converted to RGB.
    """

    def __call__(self, img):
        kind = _kind(img, "ToArray")
        if kind == "chw":
            raise TypeError(
                f"ToArray: expected a PIL image or a uint8 (H, W[, C]) array, got a {img.dtype} "
                f"(C, H, W) array; it is already converted"
            )
        if kind == "pil":
            img = np.asarray(img if img.mode in ("L", "RGB", "RGBA") else img.convert("RGB"))
        if img.ndim == 2:
            img = img[:, :, None]
        x = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
        x /= 255
        return x

    def __repr__(self):
        return "ToArray()"


class Normalize:
    """Per-channel standardization of a CHW float array: ``x[c] = (x[c] - mean[c]) / std[c]``.

    The statistics are cast to the array's dtype, so float32 stays float32.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(
                f"Normalize: mean and std need one value per channel each, got {self.mean.size} "
                f"and {self.std.size}"
            )
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {self.std.tolist()}")

    def __call__(self, x):
        if _kind(x, "Normalize") != "chw":
            raise TypeError("Normalize: expected a float (C, H, W) array; apply ToArray() first")
        if x.shape[0] != self.mean.size:
            raise ValueError(
                f"Normalize: mean/std have {self.mean.size} channels, the image has {x.shape[0]}"
            )
        mean = self.mean.astype(x.dtype, copy=False)[:, None, None]
        std = self.std.astype(x.dtype, copy=False)[:, None, None]
        return (x - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"
