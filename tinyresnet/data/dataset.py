"""ArrayDataset: images and labels held in memory as arrays (the digits, CIFAR, your own arrays).

A dataset is anything with ``len(ds)`` and ``ds[i] -> (image, label)``, as in PyTorch; this one
also offers ``get_batch(indices)``, which the DataLoader uses to gather a whole batch with one
fancy-indexing copy when there is no transform to apply sample by sample.  A ``batch_transform``
(see :mod:`tinyresnet.data.batch_transforms`) is applied by the DataLoader to that gathered batch,
with one generator per sample.
"""
import numpy as np

from .transforms import _generator

__all__ = ["ArrayDataset"]


class ArrayDataset:
    """Samples ``(transform(images[i]), labels[i])`` from two arrays of the same length.

    Parameters
    ----------
    images : array (N, ...), e.g. (N, C, H, W) float32 ready for a model, or (N, H, W, C) uint8
        raw pixels for transforms to convert (see :mod:`tinyresnet.data.transforms`)
    labels : integer array-like (N,), class indices
    transform : callable applied to each image, or None
    classes : list of N_classes class names, or None; when given, labels must lie in
        ``0 .. len(classes) - 1``
    batch_transform : callable ``(images (B, ...), rngs) -> float (B, C, H, W)`` applied to whole
        batches, e.g. ``BatchTransform``; exclusive with ``transform``
    """

    def __init__(self, images, labels, transform=None, classes=None, batch_transform=None):
        name = type(self).__name__
        images = np.asarray(images)
        labels = np.asarray(labels)
        if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(
                f"{name}: labels must be a 1-d array of integer class indices, got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        if images.ndim < 1 or len(images) != len(labels):
            raise ValueError(
                f"{name}: got {len(images) if images.ndim else 0} images but {len(labels)} labels"
            )
        if classes is not None:
            classes = [str(c) for c in classes]
            bad = (labels < 0) | (labels >= len(classes))
            if np.any(bad):
                raise ValueError(
                    f"{name}: label {labels[bad][0]} at index {np.flatnonzero(bad)[0]} is out of "
                    f"range for {len(classes)} classes (expected 0..{len(classes) - 1})"
                )
        if transform is not None and batch_transform is not None:
            raise ValueError(f"{name}: give a transform or a batch_transform, not both")
        self.images, self.labels = images, labels.astype(np.int64, copy=False)
        self.transform, self.classes = transform, classes
        self.batch_transform = batch_transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        elif self.batch_transform is not None:
            # A batch of one, drawing from the generator a per-image transform would use.
            rngs = [_generator(None)] if getattr(self.batch_transform, "random", True) else None
            image = self.batch_transform(image[None], rngs)[0]
        return image, int(self.labels[index])

    def get_batch(self, indices):
        """(images[indices], labels[indices]) in one gather; only without a transform (the
        ``batch_transform``, if any, is left to the caller: it needs one generator per sample)."""
        if self.transform is not None:
            raise ValueError(
                f"{type(self).__name__}.get_batch: the dataset has a transform, which is applied "
                "per sample; index samples one at a time"
            )
        return self.images[indices], self.labels[indices]

    def __repr__(self):
        classes = None if self.classes is None else len(self.classes)
        return (
            f"{type(self).__name__}(samples={len(self)}, image shape={self.images.shape[1:]}, "
            f"dtype={self.images.dtype}, classes={classes})"
        )
