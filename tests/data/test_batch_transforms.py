"""Whole-batch CIFAR augmentation (tinyresnet/data/batch_transforms.py) against the per-image
transforms it replaces, and the DataLoader's per-sample seeding of it."""
import numpy as np
import pytest

from tinyresnet.data import ArrayDataset, BatchTransform, DataLoader, sample_seed
from tinyresnet.data import transforms as T
from tinyresnet.data.batch_transforms import random_crop_flip, to_normalized_chw
from tinyresnet.data.transforms import _sample_seed

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def images(n=16, size=(32, 32), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n,) + size + (3,), dtype=np.uint8)


def reference(batch, seeds, padding=4, p=0.5):
    """The per-image recipe, one image at a time, each drawing from its own seed."""
    recipe = T.Compose([T.RandomCrop(batch.shape[1:3], padding=padding),
                        T.RandomHorizontalFlip(p), T.ToArray(), T.Normalize(MEAN, STD)])
    out = []
    for image, seed in zip(batch, seeds):
        with _sample_seed(seed):
            out.append(recipe(image))
    return np.stack(out)


@pytest.mark.parametrize("padding, p, size", [(4, 0.5, (32, 32)), (2, 0.5, (7, 5)),
                                              (4, 1.0, (8, 8)), (3, 0.0, (8, 8))])
def test_batch_equals_the_per_image_recipe_bit_for_bit(padding, p, size):
    batch = images(24, size)
    seeds = [sample_seed(5, 1, i) for i in range(len(batch))]
    got = BatchTransform(MEAN, STD, padding=padding, p=p)(
        batch, [np.random.default_rng(s) for s in seeds])
    np.testing.assert_array_equal(got, reference(batch, seeds, padding, p), strict=True)


def test_crop_flip_moves_pixels_as_the_naive_definition():
    batch = images(8, (6, 6), seed=1)
    rngs = [np.random.default_rng(i) for i in range(8)]
    got = random_crop_flip(batch, rngs, padding=2)
    for b, image in enumerate(batch):
        rng = np.random.default_rng(b)
        top, left, flip = rng.integers(0, 5), rng.integers(0, 5), rng.random() < 0.5
        padded = np.zeros((10, 10, 3), np.uint8)
        padded[2:8, 2:8] = image
        crop = padded[top:top + 6, left:left + 6]
        np.testing.assert_array_equal(got[b], crop[:, ::-1] if flip else crop)


def test_every_offset_and_both_flips_occur():
    rngs = [np.random.default_rng(sample_seed(0, 0, i)) for i in range(400)]
    marker = np.zeros((400, 4, 4, 1), np.uint8)
    marker[:, 0, 0] = 255  # where the top-left pixel lands tells the offset and the flip
    out = random_crop_flip(marker, rngs, padding=1)
    seen = {tuple(int(i) for i in np.argwhere(o[:, :, 0])[0]) for o in out if o.any()}
    # Offsets 0..2 put the marker (at (1, 1) once padded) in rows and columns 1, 0 or off the
    # crop; a flip sends column c to 3 - c.
    assert seen == {(r, c) for r in (0, 1) for c in range(4)}


def test_evaluation_transform_is_to_array_then_normalize():
    batch = images(5)
    got = BatchTransform(MEAN, STD)(batch)
    want = np.stack([T.Normalize(MEAN, STD)(T.ToArray()(image)) for image in batch])
    np.testing.assert_array_equal(got, want, strict=True)
    assert got.dtype == np.float32 and got.shape == (5, 3, 32, 32)
    assert not BatchTransform(MEAN, STD).random and BatchTransform(MEAN, STD, padding=4).random
    np.testing.assert_array_equal(to_normalized_chw(batch, MEAN, STD), got)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="BatchTransform: expected uint8 images"):
        BatchTransform(MEAN, STD)(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="3 channels, the images 1"):
        BatchTransform(MEAN, STD)(np.zeros((2, 4, 4, 1), np.uint8))
    with pytest.raises(ValueError, match="one value per channel"):
        BatchTransform((0.5,), (0.1, 0.2))
    with pytest.raises(ValueError, match="3 generators for 2 images"):
        random_crop_flip(np.zeros((2, 4, 4, 3), np.uint8), [np.random.default_rng()] * 3)


def _augmented(n=40):
    return ArrayDataset(images(n, (8, 8), seed=3), np.arange(n) % 10,
                        batch_transform=BatchTransform(MEAN, STD, padding=4))


def _all(loader, epoch=0):
    loader.set_epoch(epoch)
    xs, ys = zip(*[(x.copy(), y.copy()) for x, y in loader])
    return np.concatenate(xs), np.concatenate(ys)


def test_same_seed_same_batches_whatever_the_batch_size():
    data = _augmented()
    base = _all(DataLoader(data, batch_size=8, shuffle=True, seed=11))
    for batch_size, prefetch in ((1, False), (7, True), (40, True)):
        other = _all(DataLoader(data, batch_size=batch_size, shuffle=True, seed=11,
                                prefetch=prefetch))
        np.testing.assert_array_equal(other[0], base[0], strict=True)
        np.testing.assert_array_equal(other[1], base[1])
    again = _all(DataLoader(data, batch_size=8, shuffle=True, seed=11))
    np.testing.assert_array_equal(again[0], base[0], strict=True)
    assert not np.array_equal(_all(DataLoader(data, batch_size=8, shuffle=True, seed=12))[0],
                              base[0])
    assert not np.array_equal(_all(DataLoader(data, batch_size=8, shuffle=True, seed=11), 1)[0],
                              base[0])


def test_batch_path_equals_the_per_sample_path():
    """Indexing one sample (the path a Subset or a notebook takes) augments it as in a batch."""

    class PerSample:  # no get_batch: the loader indexes one sample at a time
        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            return self.data[i]

    data = _augmented()
    batched = _all(DataLoader(data, batch_size=16, shuffle=True, seed=4))
    one_by_one = _all(DataLoader(PerSample(data), batch_size=16, shuffle=True, seed=4))
    np.testing.assert_array_equal(one_by_one[0], batched[0], strict=True)
