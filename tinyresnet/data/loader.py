"""DataLoader: batches of (images, labels) with seeded shuffling and background prefetch.

Reproducibility: everything random about an epoch, the shuffle order and the randomness of each
sample's transforms, is drawn from generators seeded by ``(seed, epoch)`` (the order) and
``(seed, epoch, position in the epoch)`` (each sample), through ``numpy.random.SeedSequence``.
So an epoch is the same with or without prefetch, with any number of workers, and in a run
resumed from a checkpoint (``set_epoch(epoch)``, or ``load_state_dict``), while each new epoch
gets a new order.  Without a ``seed`` the loader draws one from the package generator
(``tinyresnet.manual_seed``) when it is built, and keeps it in its ``state_dict``.

Data parallelism (``num_replicas`` P > 1, one loader per MPI rank): every rank draws the same
epoch order from the seed and cuts the same global batches of ``batch_size`` B from it; rank r
keeps the r-th of P equal, contiguous shards of each batch (B/P samples; B must be divisible by
P).  A sample keeps its position in the epoch, so its augmentation is the same with any number of
ranks, and the P shards of a step together are the batch a single process would see.  Unlike
PyTorch's DistributedSampler nothing is padded: with ``drop_last`` the incomplete last batch is
dropped on every rank; without it the last batch is split as evenly as the samples allow (shards
differ by at most one sample) and a rank left with no sample gets no last batch, so evaluation
counts every sample exactly once.  Training needs ``drop_last=True`` for every rank to take the
same number of steps.

Prefetch: a background thread assembles the next batches (at most two ahead) while the caller
trains on the current one.  NumPy, Pillow decoding and resizing release the GIL, so this hides
most of the loading time even on two cores.  An exception raised while loading is re-raised in
the caller at the batch where it happened, and abandoning the iteration (``break``, an error in
the training step, ``close()``) stops the thread.
"""
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import to_device
from ..random import get_rng
from .dataset import ArrayDataset
from .transforms import _sample_seed

__all__ = ["DataLoader", "sample_seed"]

_PREFETCH_DEPTH = 2


class DataLoader:
    """Iterate over a dataset in batches ``(images (B, C, H, W), labels (B,) int64)``.

    Parameters
    ----------
    dataset : object with ``len(ds)`` and ``ds[i] -> (image, label)``, the image a float array
        (use ``transforms.ToArray()`` for PIL images and uint8 pixels)
    batch_size : int, B
    shuffle : draw a new order every epoch (seeded; see the module docstring)
    drop_last : drop the last batch when it is smaller than ``batch_size``
    seed : int >= 0, or None to draw one from the package generator
    prefetch : assemble the next batches in a background thread
    num_workers : threads that load the samples of a batch in parallel (0: one at a time, in the
        prefetch thread or the caller's)
    device : None or 'cpu' (NumPy batches) or 'cuda' (CuPy batches, copied in the prefetch thread)
    num_replicas, rank : data parallelism, as PyTorch's DistributedSampler names them: this loader
        yields rank ``rank``'s shard of each global batch of ``batch_size`` (see the module
        docstring).  Default: one replica, rank 0 (the whole batch).

    Images keep the dataset's float dtype (float32 for every dataset here).  ``len(loader)`` is
    the number of batches per epoch (this rank's, with several replicas).

    Raises ValueError for a batch size not divisible by ``num_replicas``, naming both.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, drop_last=False, seed=None,
                 prefetch=True, num_workers=0, device=None, num_replicas=1, rank=0):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: the dataset must support len() and indexing, got "
                f"{type(dataset).__name__}"
            )
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise ValueError(
                f"DataLoader: batch_size must be a positive integer, got {batch_size!r}"
            )
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if drop_last and batch_size > len(dataset):
            raise ValueError(
                f"DataLoader: batch_size {batch_size} is larger than the dataset "
                f"({len(dataset)} samples) and drop_last=True, so there would be no batch at all; "
                "use a smaller batch_size or drop_last=False"
            )
        if not (isinstance(num_workers, (int, np.integer)) and num_workers >= 0):
            raise ValueError(
                f"DataLoader: num_workers must be an integer >= 0, got {num_workers!r}"
            )
        if not (isinstance(num_replicas, (int, np.integer)) and num_replicas > 0
                and isinstance(rank, (int, np.integer)) and 0 <= rank < num_replicas):
            raise ValueError(
                f"DataLoader: expected num_replicas >= 1 and 0 <= rank < num_replicas, got "
                f"num_replicas={num_replicas!r}, rank={rank!r}"
            )
        if batch_size % num_replicas:
            raise ValueError(
                f"DataLoader: the global batch size {batch_size} is not divisible by the "
                f"{num_replicas} replicas; choose a multiple of {num_replicas}"
            )
        if seed is None:
            seed = int(get_rng().integers(2**63))
        elif not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ValueError(f"DataLoader: seed must be an integer >= 0 or None, got {seed!r}")
        if device is not None:
            to_device(np.zeros(1, dtype=np.float32), device)  # fail now, with the backend's help
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.seed, self.epoch = int(seed), 0
        self.prefetch, self.num_workers, self.device = bool(prefetch), int(num_workers), device
        self.num_replicas, self.rank = int(num_replicas), int(rank)

    def __len__(self):
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        # Without drop_last, a rank gets the last batch only when its shard of it is not empty.
        rest = n % self.batch_size
        return n // self.batch_size + int(rest > 0 and self._shard(rest)[0] < self._shard(rest)[1])

    def _shard(self, size):
        """[start, stop) of this rank's shard within a batch of ``size`` samples (np.array_split's)."""
        base, extra = divmod(size, self.num_replicas)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (self.rank < extra)

    # ---- position, for resuming ----------------------------------------------------------------
    def set_epoch(self, epoch):
        """Make the next ``iter(loader)`` produce epoch ``epoch`` (later ones count up from it)."""
        if not (isinstance(epoch, (int, np.integer)) and epoch >= 0):
            raise ValueError(f"DataLoader.set_epoch: epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def state_dict(self):
        """``{"seed": int, "epoch": int}``: all that decides the coming epochs' batches."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    # ---- iteration -----------------------------------------------------------------------------
    def batch_indices(self, epoch):
        """The dataset indices of each batch of epoch ``epoch``, in order (a list of arrays; this
        rank's shards with several replicas)."""
        return [indices for _, indices in self._batches(epoch)]

    def _batches(self, epoch):
        """(position in the epoch of the first sample, dataset indices) of this rank's batches."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(np.random.SeedSequence([self.seed, epoch])).permutation(n)
        else:
            order = np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        batches = []
        for first in range(0, stop, self.batch_size):
            start, end = self._shard(min(self.batch_size, n - first))
            if end > start:
                batches.append((first + start, order[first + start:first + end]))
        return batches

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._iterate(epoch)

    def _iterate(self, epoch):
        pool = ThreadPoolExecutor(self.num_workers) if self.num_workers else None
        batches = (
            self._load_batch(epoch, first_position, indices, pool)
            for first_position, indices in self._batches(epoch)
        )
        try:
            yield from _prefetch(batches) if self.prefetch else batches
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _load_batch(self, epoch, first_position, indices, pool):
        """Load and collate one batch; ``first_position``: its first sample's place in the epoch."""
        dataset = self.dataset
        if isinstance(dataset, ArrayDataset) and dataset.transform is None:
            # In-memory arrays and no per-sample transform: one gather instead of B copies and a
            # stack, then the batch transform (one generator per sample) on the whole batch.
            images, labels = dataset.get_batch(indices)
            batch_transform = dataset.batch_transform
            if batch_transform is not None:
                rngs = None
                if getattr(batch_transform, "random", True):
                    rngs = [np.random.default_rng(sample_seed(self.seed, epoch, position))
                            for position in range(first_position, first_position + len(indices))]
                images = batch_transform(images, rngs)
            _check_images(images, "dataset images")
        else:
            def load(position_index):
                position, index = position_index
                with _sample_seed(sample_seed(self.seed, epoch, position)):
                    return dataset[int(index)]

            jobs = list(enumerate(indices, start=first_position))
            samples = list(pool.map(load, jobs) if pool is not None else map(load, jobs))
            images = _stack([s[0] for s in samples], first_position)
            labels = _labels([s[1] for s in samples], first_position)
        if self.device is not None:
            return to_device(images, self.device), to_device(labels, self.device)
        return images, labels

    def __repr__(self):
        return (
            f"DataLoader(samples={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
            f"prefetch={self.prefetch}, num_workers={self.num_workers}, device={self.device}"
            + (f", num_replicas={self.num_replicas}, rank={self.rank})" if self.num_replicas > 1
               else ")")
        )


def sample_seed(seed, epoch, position):
    """The seed of the randomness of one sample: the loader's ``seed``, the ``epoch``, and the
    sample's ``position`` in that epoch's order (0 .. N-1), as a ``numpy.random.SeedSequence``.

    Everything random about a sample (its crop, its flip) is drawn from
    ``numpy.random.default_rng(sample_seed(seed, epoch, position))`` and from nothing else, so a
    sample's augmentation does not depend on the batch size, on how batches are split, on prefetch
    or worker threads, on resuming, or on which of several data-parallel ranks loads it.
    """
    return np.random.SeedSequence([seed, epoch], spawn_key=(position,))


# ---- collation --------------------------------------------------------------------------------
def _check_images(images, what):
    if not (isinstance(images, np.ndarray) and images.dtype.kind == "f"):
        kind = (f"{images.dtype} arrays" if isinstance(images, np.ndarray)
                else f"{type(images).__name__} objects")
        raise TypeError(
            f"DataLoader: {what} are {kind}; expected float (C, H, W) arrays. Add "
            "transforms.ToArray() at the end of the dataset's transform to convert PIL images "
            "and uint8 pixels"
        )


def _stack(images, first_position):
    for image in images:
        _check_images(image, "the dataset's samples")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(
            f"DataLoader: the samples of the batch starting at position {first_position} have "
            f"different shapes {sorted(shapes)}; resize or crop them to one size (e.g. "
            "transforms.Resize((H, W)) or CenterCrop)"
        )
    return np.stack(images)


def _labels(labels, first_position):
    out = np.asarray(labels)
    if out.ndim != 1 or not np.issubdtype(out.dtype, np.integer):
        raise TypeError(
            f"DataLoader: labels must be integer class indices, got {labels[:3]!r}... in the "
            f"batch starting at position {first_position}"
        )
    return out.astype(np.int64, copy=False)


# ---- background prefetch ----------------------------------------------------------------------
def _prefetch(batches):
    """Yield from ``batches``, which a daemon thread runs up to _PREFETCH_DEPTH items ahead."""
    slots = queue.Queue(maxsize=_PREFETCH_DEPTH)
    stop = threading.Event()

    def put(item):
        # A timeout loop, not a blocking put, so an abandoned iteration never leaves the thread
        # waiting forever on a full queue.
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, who re-raises it
            put(("error", exc))

    thread = threading.Thread(target=produce, name="tinyresnet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "batch":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        thread.join()
