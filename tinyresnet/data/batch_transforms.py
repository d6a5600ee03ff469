"""Whole-batch CIFAR augmentation in NumPy: padded random crop, horizontal flip, normalisation.

The per-image transforms (``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip()``,
``ToArray()``, ``Normalize(mean, std)``) cost several PIL or small-array calls per image; here one
batch of uint8 images ``(B, H, W, C)`` becomes a float batch ``(B, C, H, W)`` in three vectorised
steps: one zero-padded copy of the batch, one fancy-indexing gather that crops and flips every
image at once, one cast-and-normalise.

Randomness stays per sample: image ``b`` draws its crop offsets and its flip from its own
generator ``rngs[b]``, in the order the per-image transforms draw them (top, left, then the flip
coin), so the batch result equals ``Compose([RandomCrop(H, padding), RandomHorizontalFlip(p),
ToArray(), Normalize(mean, std)])`` applied image by image with the same generators, bit for bit
(tests/data/test_batch_transforms.py checks it).  The DataLoader gives each sample the generator
:func:`tinyresnet.data.loader.sample_seed` derives from ``(seed, epoch, position)``, so the batches
do not depend on how the epoch is cut into batches.
"""
import numpy as np

__all__ = ["random_crop_flip", "to_normalized_chw", "BatchTransform"]


def random_crop_flip(images, rngs, padding=4, p=0.5):
    """Zero-pad every image by ``padding``, crop back to (H, W) at a random offset, flip with
    probability ``p``.

    Parameters
    ----------
    images : uint8 array (B, H, W, C)
    rngs : sequence of B ``numpy.random.Generator``, one per image
    padding : int >= 0, pixels added on each side before cropping (the ResNet paper: 4)
    p : probability of a horizontal flip

    Returns
    -------
    uint8 array (B, H, W, C); image b is ``pad(images[b])[top:top+H, left:left+W]``, mirrored
    when its coin came up, with ``top, left`` uniform in ``0 .. 2 * padding``.
    """
    B, H, W = images.shape[:3]
    if len(rngs) != B:
        raise ValueError(f"random_crop_flip: got {len(rngs)} generators for {B} images")
    # Draw in the per-image transforms' order: RandomCrop's top, left; RandomHorizontalFlip's coin.
    draws = np.empty((B, 3), dtype=np.int64)
    for b, rng in enumerate(rngs):
        top = rng.integers(0, 2 * padding + 1) if padding else 0
        left = rng.integers(0, 2 * padding + 1) if padding else 0
        draws[b] = top, left, rng.random() < p
    top, left, flip = draws[:, 0], draws[:, 1], draws[:, 2].astype(bool)
    padded = np.zeros((B, H + 2 * padding, W + 2 * padding) + images.shape[3:], dtype=images.dtype)
    padded[:, padding:padding + H, padding:padding + W] = images
    # A flip reads the crop's columns right to left: fold it into the column index.
    columns = np.where(flip[:, None], np.arange(W - 1, -1, -1), np.arange(W)) + left[:, None]
    rows = top[:, None] + np.arange(H)
    return padded[np.arange(B)[:, None, None], rows[:, :, None], columns[:, None, :]]


def to_normalized_chw(images, mean, std, dtype=np.float32):
    """uint8 (B, H, W, C) -> ``(pixel / 255 - mean[c]) / std[c]`` as (B, C, H, W) of ``dtype``.

    The same arithmetic, in the same order and precision, as ``ToArray()`` then ``Normalize``.
    """
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=dtype)
    x /= 255
    mean = np.asarray(mean, dtype=np.float64).astype(dtype)[:, None, None]
    std = np.asarray(std, dtype=np.float64).astype(dtype)[:, None, None]
    return (x - mean) / std


class BatchTransform:
    """The CIFAR recipe for a batch: optional padded crop and flip, then normalisation.

    Parameters
    ----------
    mean, std : per-channel statistics, in [0, 1] pixel units
    padding : None for no augmentation (evaluation), else the crop padding (training: 4)
    p : flip probability (with ``padding`` not None)

    ``transform(images, rngs)``: images uint8 (B, H, W, C), rngs one generator per image (ignored
    when ``random`` is False) -> float32 (B, C, H, W).
    """

    def __init__(self, mean, std, padding=None, p=0.5):
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if len(self.mean) != len(self.std) or not all(self.std):
            raise ValueError(
                f"BatchTransform: mean and std need one value per channel each, std non-zero; "
                f"got mean {self.mean}, std {self.std}"
            )
        self.padding, self.p = padding, p

    @property
    def random(self):
        """Whether the transform draws from the generators (the loader skips making them if not)."""
        return self.padding is not None

    def __call__(self, images, rngs=None):
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4):
            raise TypeError(
                f"BatchTransform: expected uint8 images (B, H, W, C), got "
                f"{getattr(images, 'dtype', type(images).__name__)} of shape "
                f"{getattr(images, 'shape', None)}"
            )
        if images.shape[3] != len(self.mean):
            raise ValueError(
                f"BatchTransform: mean/std have {len(self.mean)} channels, the images "
                f"{images.shape[3]}"
            )
        if self.random:
            images = random_crop_flip(images, rngs, self.padding, self.p)
        return to_normalized_chw(images, self.mean, self.std)

    def __repr__(self):
        aug = f"padding={self.padding}, p={self.p}, " if self.random else ""
        return f"BatchTransform({aug}mean={self.mean}, std={self.std})"
