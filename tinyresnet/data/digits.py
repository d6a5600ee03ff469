"""The built-in dataset: UCI handwritten digits, shipped inside the package (no download).

1,797 grayscale 8x8 images of the digits 0-9 (pixel values 0..16, the count of "on" pixels in
4x4 blocks of a 32x32 bitmap), split once, stratified by class, into 1,347 training and 450 test
images (the split is stored in the file, so it never changes).

Data: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of Handwritten Digits", UCI Machine
Learning Repository, https://doi.org/10.24432/C50P49, licensed CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/); the copy is scikit-learn's, converted by
``scripts/make_digits.py``.  Full credit and the changes made:
``tinyresnet/data/DIGITS_LICENSE.txt``.
"""
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset

__all__ = ["load_digits", "DIGITS_CLASSES"]

_PATH = Path(__file__).with_name("digits.npz")
DIGITS_CLASSES = [str(d) for d in range(10)]


def load_digits(transform=None):
    """The digits as ``(train, test)`` ArrayDatasets of 1,347 and 450 images.

    Parameters
    ----------
    transform : optional callable applied to each (1, 8, 8) float32 image of both splits (e.g.
        ``transforms.RandomCrop(8, padding=1)``); usually only wanted on the training split, so
        set ``train.transform`` instead when the test split should stay as it is.

    Returns
    -------
    train, test : ArrayDataset with ``images`` float32 (N, 1, 8, 8) in [0, 1] (pixel / 16),
        ``labels`` int64 (N,) and ``classes`` ["0", ..., "9"].
    """
    with np.load(_PATH, allow_pickle=False) as f:
        images, labels, is_test = f["images"], f["labels"], f["is_test"]
    x = (images.astype(np.float32) / 16)[:, None, :, :]
    y = labels.astype(np.int64)
    return (
        ArrayDataset(x[~is_test], y[~is_test], transform=transform, classes=DIGITS_CLASSES),
        ArrayDataset(x[is_test], y[is_test], transform=transform, classes=DIGITS_CLASSES),
    )
