"""The built-in digits (tinyresnet/data/digits.py and the shipped digits.npz): shapes, dtypes,
split, class balance, offline, and equal to scikit-learn's copy when scikit-learn is present."""
import importlib.util
import socket
from pathlib import Path

import numpy as np
import pytest

from tinyresnet.data import DataLoader, load_digits
from tinyresnet.data import transforms as T

# The UCI digits' per-class counts, a property of the data set (see its description).
CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_shapes_dtypes_and_split():
    train, test = load_digits()
    assert (len(train), len(test)) == (1347, 450)
    for ds in (train, test):
        assert ds.images.dtype == np.float32 and ds.images.shape[1:] == (1, 8, 8)
        assert ds.labels.dtype == np.int64
        assert ds.classes == [str(d) for d in range(10)]
        assert ds.images.min() == 0 and ds.images.max() == 1
        # pixels are counts 0..16 divided by 16
        np.testing.assert_array_equal(ds.images * 16, np.round(ds.images * 16))
    counts = np.bincount(train.labels, minlength=10) + np.bincount(test.labels, minlength=10)
    assert counts.tolist() == CLASS_COUNTS


def test_split_is_stratified_and_fixed():
    train, test = load_digits()
    share = np.bincount(test.labels, minlength=10) / np.array(CLASS_COUNTS)
    assert np.all(np.abs(share - 450 / 1797) < 0.01)
    again_train, again_test = load_digits()
    np.testing.assert_array_equal(again_test.images, test.images)
    np.testing.assert_array_equal(again_train.labels, train.labels)


def test_same_images_as_scikit_learn():
    # Read scikit-learn's bundled CSV directly: importing sklearn.datasets takes seconds.
    spec = importlib.util.find_spec("sklearn")
    csv = spec and Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not csv or not csv.is_file():
        pytest.skip("scikit-learn's digits.csv.gz is not installed")
    reference = np.loadtxt(csv, delimiter=",")
    train, test = load_digits()
    ours = np.concatenate([train.images, test.images])[:, 0] * 16
    labels = np.concatenate([train.labels, test.labels])

    def pairs(images, targets):  # the multiset of (image, label) pairs, order-free
        return sorted(zip(map(bytes, images.astype(np.uint8)), targets.astype(int).tolist()))

    assert pairs(ours, labels) == pairs(reference[:, :64].reshape(-1, 8, 8), reference[:, 64])


def test_works_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_digits tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    train, _ = load_digits()
    assert len(train) == 1347


def test_transform_and_loader():
    train, test = load_digits()
    train.transform = T.RandomCrop(8, padding=1)
    x, y = next(iter(DataLoader(train, batch_size=64, shuffle=True, seed=0)))
    assert x.shape == (64, 1, 8, 8) and x.dtype == np.float32 and y.shape == (64,)
    x, y = next(iter(DataLoader(test, batch_size=450)))
    np.testing.assert_array_equal(x, test.images)
