"""ArrayDataset (tinyresnet/data/dataset.py): indexing, transform, batch gather, bad input."""
import numpy as np
import pytest

from tinyresnet.data import ArrayDataset


def test_indexing_and_transform():
    images = np.arange(12, dtype=np.float32).reshape(3, 1, 2, 2)
    ds = ArrayDataset(images, [2, 0, 1], transform=lambda x: x * 2, classes=["a", "b", "c"])
    image, label = ds[1]
    np.testing.assert_array_equal(image, images[1] * 2)
    assert label == 0 and isinstance(label, int) and len(ds) == 3
    assert ds.labels.dtype == np.int64
    with pytest.raises(ValueError, match="has a transform"):
        ds.get_batch([0, 1])
    ds.transform = None
    x, y = ds.get_batch(np.array([2, 0]))
    np.testing.assert_array_equal(x, images[[2, 0]])
    np.testing.assert_array_equal(y, [1, 2])


@pytest.mark.parametrize(
    "images, labels, classes, message",
    [
        (np.zeros((3, 2)), [0, 1], None, "got 3 images but 2 labels"),
        (np.zeros((2, 2)), [0.5, 1.0], None, "labels must be a 1-d array of integer"),
        (np.zeros((2, 2)), [[0, 1]], None, "labels must be a 1-d array of integer"),
        (np.zeros((3, 2)), [0, 3, 1], ["a", "b", "c"],
         r"label 3 at index 1 is out of range for 3 classes \(expected 0..2\)"),
        (np.zeros((2, 2)), [0, -1], ["a", "b"], "label -1 at index 1 is out of range"),
    ],
)
def test_bad_input(images, labels, classes, message):
    with pytest.raises(ValueError, match=message):
        ArrayDataset(images, labels, classes=classes)
