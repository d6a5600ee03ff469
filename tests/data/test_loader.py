"""DataLoader (tinyresnet/data/loader.py): seeded shuffling, coverage, drop_last, prefetch,
workers, error propagation, resume, and the in-memory fast path."""
import threading
import time

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet.data import ArrayDataset, DataLoader
from tinyresnet.data import transforms as T


def _dataset(n=10, transform=None):
    """Image i is filled with the value i, so a batch shows which samples it holds."""
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 1, 2, 2))
    return ArrayDataset(images.copy(), np.arange(n) % 3, transform=transform)


def _ids(batch):
    return batch[0][:, 0, 0, 0].astype(int).tolist()


def _epoch(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


class _Samples:
    """A plain dataset (no get_batch): image i filled with i, optionally passed through a
    transform, optionally failing at one index."""

    def __init__(self, n, transform=None, fail_at=None, delay=0.0):
        self.n, self.transform, self.fail_at, self.delay = n, transform, fail_at, delay

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError(f"broken sample {i}")
        time.sleep(self.delay)
        x = np.full((1, 4, 4), i, dtype=np.float32)
        return (x if self.transform is None else self.transform(x)), i % 3


def test_batches_shapes_dtypes_and_last_partial_batch():
    loader = DataLoader(_dataset(10), batch_size=4)
    batches = _epoch(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 1, 2, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert [_ids(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(y, [0, 1, 2, 0])


def test_drop_last():
    loader = DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [_ids(b) for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(_dataset(8), batch_size=4, drop_last=True)) == 2


def test_batch_larger_than_dataset_with_drop_last_is_refused():
    with pytest.raises(ValueError, match=r"batch_size 16 is larger than the dataset \(10 samples\) "
                                         r"and drop_last=True"):
        DataLoader(_dataset(10), batch_size=16, drop_last=True)
    assert len(DataLoader(_dataset(10), batch_size=16)) == 1


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_covers_every_sample_once_per_epoch(drop_last):
    loader = DataLoader(_dataset(23), batch_size=5, shuffle=True, seed=3, drop_last=drop_last)
    for _ in range(3):
        ids = [i for b in loader for i in _ids(b)]
        assert len(ids) == (20 if drop_last else 23) and len(set(ids)) == len(ids)
        if not drop_last:
            assert sorted(ids) == list(range(23))


def test_shuffle_is_seeded_and_differs_across_epochs():
    def orders(seed):
        loader = DataLoader(_dataset(30), batch_size=7, shuffle=True, seed=seed)
        return [[i for b in loader for i in _ids(b)] for _ in range(3)]

    first = orders(11)
    assert orders(11) == first
    assert first[0] != first[1] != first[2]
    assert orders(12)[0] != first[0]
    assert first[0] != list(range(30))


def test_set_epoch_reproduces_an_epoch_and_state_dict_restores_the_seed():
    loader = DataLoader(_dataset(30), batch_size=7, shuffle=True)  # seed drawn from the package
    epochs = [[i for b in loader for i in _ids(b)] for _ in range(3)]
    resumed = DataLoader(_dataset(30), batch_size=7, shuffle=True)
    assert resumed.seed != loader.seed
    resumed.load_state_dict(loader.state_dict())
    resumed.set_epoch(2)
    assert [i for b in resumed for i in _ids(b)] == epochs[2]
    loader.set_epoch(1)
    assert [i for b in loader for i in _ids(b)] == epochs[1]


def test_seed_none_follows_manual_seed():
    tr.manual_seed(4)
    a = DataLoader(_dataset(30), batch_size=30, shuffle=True)
    tr.manual_seed(4)
    b = DataLoader(_dataset(30), batch_size=30, shuffle=True)
    assert a.seed == b.seed and _ids(next(iter(a))) == _ids(next(iter(b)))


@pytest.mark.parametrize("num_workers", [0, 3])
def test_prefetch_and_workers_give_identical_batches_with_random_transforms(num_workers):
    augment = T.Compose([T.RandomCrop(2, padding=1), T.RandomHorizontalFlip()])
    plain = _epoch(DataLoader(_Samples(25, augment), batch_size=4, shuffle=True, seed=5,
                              prefetch=False))
    other = _epoch(DataLoader(_Samples(25, augment), batch_size=4, shuffle=True, seed=5,
                              prefetch=True, num_workers=num_workers))
    assert len(plain) == len(other) == 7
    for (xa, ya), (xb, yb) in zip(plain, other):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # The augmentation did something: some crops of a non-zero image reach into the zero padding.
    assert any((img == 0).any() and (img != 0).any() for x, _ in plain for img in x)


def test_augmentation_differs_across_epochs_and_repeats_after_set_epoch():
    loader = DataLoader(_dataset(12, transform=T.RandomCrop(2, padding=1)), batch_size=12, seed=0)
    x0, x1 = next(iter(loader))[0], next(iter(loader))[0]
    assert not np.array_equal(x0, x1)
    loader.set_epoch(0)
    np.testing.assert_array_equal(next(iter(loader))[0], x0)


def test_fast_path_equals_the_per_sample_path():
    data = _dataset(17)
    fast = _epoch(DataLoader(data, batch_size=5, shuffle=True, seed=9))

    class NoFastPath:
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i]

    slow = _epoch(DataLoader(NoFastPath(), batch_size=5, shuffle=True, seed=9))
    for (xa, ya), (xb, yb) in zip(fast, slow):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("prefetch, num_workers", [(True, 0), (False, 0), (True, 2)])
def test_exceptions_in_loading_reach_the_caller(prefetch, num_workers):
    loader = DataLoader(_Samples(12, fail_at=6), batch_size=4, prefetch=prefetch,
                        num_workers=num_workers)
    seen = []
    with pytest.raises(RuntimeError, match="broken sample 6"):
        for x, _ in loader:
            seen.append(_ids((x,)))
    assert seen == [[0, 1, 2, 3]]  # the batches before the failing one arrived, in order


def test_abandoned_iteration_stops_the_prefetch_thread():
    before = {t.ident for t in threading.enumerate()}
    loader = DataLoader(_Samples(400, delay=0.001), batch_size=2)
    it = iter(loader)
    next(it)
    running = [t for t in threading.enumerate() if t.name == "tinyresnet-prefetch"]
    assert running
    it.close()
    assert not any(t.is_alive() for t in running)
    for _ in loader:  # break out of a for loop: the generator is closed when collected
        break
    time.sleep(0.05)
    assert {t.ident for t in threading.enumerate() if t.name == "tinyresnet-prefetch"} <= before


def test_samples_must_be_float_arrays():
    raw = ArrayDataset(np.zeros((4, 2, 2, 3), np.uint8), [0, 1, 0, 1])
    with pytest.raises(TypeError, match=r"uint8 arrays; expected float \(C, H, W\).*ToArray"):
        next(iter(DataLoader(raw, batch_size=2)))
    ragged = _Samples(4, transform=lambda x: x[:, : 1 + int(x[0, 0, 0]) % 2])
    with pytest.raises(ValueError, match="different shapes"):
        next(iter(DataLoader(ragged, batch_size=4, prefetch=False)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(num_workers=-1), "num_workers must be an integer >= 0"),
        (dict(seed=-3), "seed must be an integer >= 0"),
        (dict(device="tpu"), "unknown device 'tpu'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(_dataset(4), **kwargs)


def test_not_a_dataset_and_empty_dataset():
    with pytest.raises(TypeError, match="must support len"):
        DataLoader(42)
    with pytest.raises(ValueError, match="the dataset is empty"):
        DataLoader(ArrayDataset(np.zeros((0, 1, 2, 2), np.float32), np.zeros(0, np.int64)))


def test_device_cpu_gives_numpy():
    x, y = next(iter(DataLoader(_dataset(4), batch_size=2, device="cpu")))
    assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)


@pytest.mark.gpu
def test_device_cuda_gives_cupy_batches():
    from tinyresnet.backend import cupy_available, to_numpy

    if not cupy_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    data = _dataset(6)
    for prefetch in (False, True):
        batches = list(DataLoader(data, batch_size=4, device="cuda", prefetch=prefetch))
        assert all(type(x).__module__.startswith("cupy") for x, _ in batches)
        np.testing.assert_array_equal(to_numpy(batches[1][0]), data.images[4:])
        np.testing.assert_array_equal(to_numpy(batches[1][1]), data.labels[4:])


# ---- data parallelism: rank shards of the global batch --------------------------------------
@pytest.mark.parametrize("replicas", [2, 4])
def test_rank_shards_put_together_are_the_single_process_batches(replicas):
    augment = T.Compose([T.RandomCrop(2, padding=1), T.RandomHorizontalFlip()])
    whole = _epoch(DataLoader(_Samples(26, augment), batch_size=8, shuffle=True, seed=3,
                              drop_last=True, prefetch=False))
    shards = [_epoch(DataLoader(_Samples(26, augment), batch_size=8, shuffle=True, seed=3,
                                drop_last=True, num_replicas=replicas, rank=r))
              for r in range(replicas)]
    assert all(len(s) == len(whole) == 3 for s in shards)
    for step, (x, y) in enumerate(whole):
        # The same samples, in the same order, with the same augmentation (seeded by position).
        np.testing.assert_array_equal(np.concatenate([s[step][0] for s in shards]), x)
        np.testing.assert_array_equal(np.concatenate([s[step][1] for s in shards]), y)
        assert all(len(s[step][1]) == 8 // replicas for s in shards)


def test_without_drop_last_the_ranks_share_the_last_batch_and_count_every_sample_once():
    loaders = [DataLoader(_dataset(21), batch_size=8, num_replicas=4, rank=r) for r in range(4)]
    # 21 = 8 + 8 + 5: the last batch splits 2, 1, 1, 1.
    assert [len(loader) for loader in loaders] == [3, 3, 3, 3]
    seen = sorted(i for loader in loaders for batch in loader for i in _ids(batch))
    assert seen == list(range(21))
    assert [len(b[1]) for b in loaders[0]] == [2, 2, 2]
    assert [len(b[1]) for b in loaders[3]] == [2, 2, 1]
    # 17 = 8 + 8 + 1: ranks 1..3 get nothing of the last batch, so one batch fewer.
    loaders = [DataLoader(_dataset(17), batch_size=8, num_replicas=4, rank=r) for r in range(4)]
    assert [len(loader) for loader in loaders] == [3, 2, 2, 2]
    assert [len(list(loader)) for loader in loaders] == [3, 2, 2, 2]


def test_batch_size_not_divisible_by_the_replicas_is_refused():
    with pytest.raises(ValueError, match="global batch size 10 is not divisible by the 4"):
        DataLoader(_dataset(), batch_size=10, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="0 <= rank < num_replicas"):
        DataLoader(_dataset(), batch_size=4, num_replicas=2, rank=2)
