"""CIFAR-10/100 readers (tinyresnet/data/cifar.py) on tiny files written here in the official
layouts (Python-version pickles, binary records, .tar.gz archives), and the restricted unpickler
refusing crafted pickles without running them."""
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from tinyresnet.data import CIFAR10, CIFAR100, DataLoader
from tinyresnet.data import transforms as T

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


# ---- writing official-looking files -------------------------------------------------------------
def _py2_pickle(obj):
    """Pickle ``obj`` as Python 2's cPickle (protocol 2) wrote the official CIFAR files: str as
    byte strings (BINSTRING), NumPy arrays through numpy.core.multiarray._reconstruct."""
    out = [b"\x80\x02"]

    def string(s):
        data = s.encode("latin-1") if isinstance(s, str) else s
        out.append(b"U" + bytes([len(data)]) + data if len(data) < 256
                   else b"T" + struct.pack("<i", len(data)) + data)

    def write(o):
        if isinstance(o, bool):
            out.append(b"\x88" if o else b"\x89")
        elif o is None:
            out.append(b"N")
        elif isinstance(o, int):
            out.append(b"J" + struct.pack("<i", o))
        elif isinstance(o, (str, bytes)):
            string(o)
        elif isinstance(o, tuple):
            out.append(b"(")
            for item in o:
                write(item)
            out.append(b"t")
        elif isinstance(o, list):
            out.append(b"](")
            for item in o:
                write(item)
            out.append(b"e")
        elif isinstance(o, dict):
            out.append(b"}(")
            for k, v in o.items():
                write(k)
                write(v)
            out.append(b"u")
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.append(b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n")
            write((0,))
            write("b")
            out.append(b"tR")
            out.append(b"(")
            write(1)
            write(tuple(o.shape))
            out.append(b"cnumpy\ndtype\n")
            write(("u1", False, True))
            out.append(b"R")
            write((3, "|", None, None, None, -1, -1, 0))
            out.append(b"b")
            write(False)
            string(o.tobytes())
            out.append(b"tb")
        else:
            raise TypeError(type(o))

    write(obj)
    out.append(b".")
    return b"".join(out)


def _dump(obj, protocol):
    return _py2_pickle(obj) if protocol == "py2" else pickle.dumps(obj, protocol=protocol)


def _flat(images):
    """(N, 32, 32, 3) HWC -> (N, 3072) rows: red plane, green plane, blue plane."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _make(rng, n, n_classes):
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return images, rng.integers(0, n_classes, n)


def _write_cifar10(root, version, rng, protocol="py2"):
    """Write 5 training batches of 2 images and a test batch of 3; return what they hold."""
    train = [_make(rng, 2, 10) for _ in range(5)]
    test = _make(rng, 3, 10)
    if version == "python":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for i, (x, y) in enumerate(train, start=1):
            (folder / f"data_batch_{i}").write_bytes(_dump(
                {"batch_label": f"training batch {i} of 5", "labels": y.tolist(), "data": _flat(x),
                 "filenames": [f"img_{i}_{k}.png" for k in range(len(y))]}, protocol))
        (folder / "test_batch").write_bytes(_dump(
            {"batch_label": "testing batch 1 of 1", "labels": test[1].tolist(),
             "data": _flat(test[0]), "filenames": ["t0.png", "t1.png", "t2.png"]}, protocol))
        (folder / "batches.meta").write_bytes(_dump(
            {"num_cases_per_batch": 2, "label_names": CIFAR10_NAMES, "num_vis": 3072}, protocol))
    else:
        folder = root / "cifar-10-batches-bin"
        folder.mkdir(parents=True)

        def records(x, y):
            return np.concatenate([y.astype(np.uint8)[:, None], _flat(x)], axis=1).tobytes()

        for i, (x, y) in enumerate(train, start=1):
            (folder / f"data_batch_{i}.bin").write_bytes(records(x, y))
        (folder / "test_batch.bin").write_bytes(records(*test))
        (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return folder, (train_x, train_y), test


def _tar(folder, archive):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


# ---- CIFAR-10 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("version, protocol", [("python", "py2"), ("python", 2), ("python", 4),
                                               ("binary", None)])
def test_cifar10_folder(tmp_path, rng, version, protocol):
    _, (train_x, train_y), (test_x, test_y) = _write_cifar10(tmp_path, version, rng, protocol)
    train, test = CIFAR10(tmp_path, train=True), CIFAR10(tmp_path, train=False)
    assert len(train) == 10 and len(test) == 3 and train.classes == CIFAR10_NAMES
    assert train.images.dtype == np.uint8 and train.images.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(train.images, train_x)
    np.testing.assert_array_equal(train.labels, train_y)
    np.testing.assert_array_equal(test.images, test_x)
    np.testing.assert_array_equal(test.labels, test_y)
    image, label = test[1]
    np.testing.assert_array_equal(image, test_x[1])
    assert label == test_y[1]


@pytest.mark.parametrize("version", ["python", "binary"])
def test_cifar10_tar_gz_read_in_place(tmp_path, rng, version):
    folder, (train_x, train_y), _ = _write_cifar10(tmp_path / "src", version, rng)
    name = "cifar-10-python.tar.gz" if version == "python" else "cifar-10-binary.tar.gz"
    (tmp_path / "data").mkdir()
    _tar(folder, tmp_path / "data" / name)
    for root in (tmp_path / "data", tmp_path / "data" / name):
        train = CIFAR10(root)
        np.testing.assert_array_equal(train.images, train_x)
        np.testing.assert_array_equal(train.labels, train_y)
    assert sorted(os.listdir(tmp_path / "data")) == [name]  # nothing was extracted


def test_cifar10_root_may_be_the_batches_folder_itself(tmp_path, rng):
    folder, (train_x, _), _ = _write_cifar10(tmp_path, "binary", rng)
    np.testing.assert_array_equal(CIFAR10(folder).images, train_x)


def test_cifar10_with_transforms_through_the_loader(tmp_path, rng):
    _write_cifar10(tmp_path, "python", rng)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    train = CIFAR10(tmp_path, transform=T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToArray(),
        T.Normalize(mean, std)]))
    x, y = next(iter(DataLoader(train, batch_size=4, shuffle=True, seed=0)))
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    plain = CIFAR10(tmp_path, transform=T.Compose([T.ToArray(), T.Normalize(mean, std)]))
    np.testing.assert_allclose(plain[0][0], (train.images[0].transpose(2, 0, 1) / 255 - 0.5) / 0.25,
                               rtol=1e-6, atol=1e-6)


def test_missing_files_say_where_to_get_them(tmp_path, rng):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path / "nowhere")
    message = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    assert "cifar-10-python.tar.gz" in message and "cifar-10-batches-py" in message
    assert str(tmp_path / "nowhere") in message
    folder, _, _ = _write_cifar10(tmp_path / "partial", "python", rng)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3' is missing; the CIFAR-10 copy is "
                                                "incomplete"):
        CIFAR10(tmp_path / "partial")
    CIFAR10(tmp_path / "partial", train=False)  # the test split is complete


def test_corrupt_pickle(tmp_path, rng):
    folder, _, _ = _write_cifar10(tmp_path, "python", rng)
    (folder / "test_batch").write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match="test_batch: not a valid CIFAR Python-version file"):
        CIFAR10(tmp_path, train=False)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.float32),
                                                      "labels": [0]}))
    with pytest.raises(ValueError, match=r"expected 'data' as a uint8 array of shape \(N, 3072\)"):
        CIFAR10(tmp_path, train=False)


def test_truncated_binary_file(tmp_path, rng):
    folder, _, _ = _write_cifar10(tmp_path, "binary", rng)
    data = (folder / "test_batch.bin").read_bytes()
    (folder / "test_batch.bin").write_bytes(data[:-10])  # 3 * 3073 - 10 bytes
    with pytest.raises(ValueError, match="test_batch.bin: 9209 bytes is not a whole number of "
                                         "3073-byte records"):
        CIFAR10(tmp_path, train=False)


def test_labels_out_of_range_are_refused(tmp_path, rng):
    folder, _, _ = _write_cifar10(tmp_path, "binary", rng)
    raw = bytearray((folder / "test_batch.bin").read_bytes())
    raw[3073] = 12  # the second record's label
    (folder / "test_batch.bin").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="label 12 at index 1 is out of range for 10 classes"):
        CIFAR10(tmp_path, train=False)


# ---- CIFAR-100 ----------------------------------------------------------------------------------
FINE = [f"fine{i}" for i in range(100)]
COARSE = [f"coarse{i}" for i in range(20)]


@pytest.mark.parametrize("version", ["python", "binary"])
@pytest.mark.parametrize("archived", [False, True])
def test_cifar100(tmp_path, rng, version, archived):
    splits = {"train": _make(rng, 4, 100), "test": _make(rng, 3, 100)}
    coarse = {k: y // 5 for k, (_, y) in splits.items()}
    if version == "python":
        folder = tmp_path / "src" / "cifar-100-python"
        folder.mkdir(parents=True)
        for split, (x, y) in splits.items():
            (folder / split).write_bytes(_py2_pickle(
                {"filenames": ["f.png"] * len(y), "batch_label": split, "fine_labels": y.tolist(),
                 "coarse_labels": coarse[split].tolist(), "data": _flat(x)}))
        (folder / "meta").write_bytes(_py2_pickle({"fine_label_names": FINE,
                                                   "coarse_label_names": COARSE}))
        archive = "cifar-100-python.tar.gz"
    else:
        folder = tmp_path / "src" / "cifar-100-binary"
        folder.mkdir(parents=True)
        for split, (x, y) in splits.items():
            rows = np.concatenate([coarse[split][:, None], y[:, None]], axis=1).astype(np.uint8)
            records = np.concatenate([rows, _flat(x)], axis=1)
            (folder / f"{split}.bin").write_bytes(records.tobytes())
        (folder / "fine_label_names.txt").write_text("\n".join(FINE))
        (folder / "coarse_label_names.txt").write_text("\n".join(COARSE))
        archive = "cifar-100-binary.tar.gz"
    root = tmp_path / "src"
    if archived:
        root = tmp_path / "data"
        root.mkdir()
        _tar(folder, root / archive)
    fine = CIFAR100(root, train=True)
    assert fine.classes == FINE and len(fine) == 4
    np.testing.assert_array_equal(fine.images, splits["train"][0])
    np.testing.assert_array_equal(fine.labels, splits["train"][1])
    test = CIFAR100(root, train=False, label_type="coarse")
    assert test.classes == COARSE
    np.testing.assert_array_equal(test.labels, coarse["test"])
    np.testing.assert_array_equal(test.images, splits["test"][0])


def test_cifar100_bad_label_type(tmp_path):
    with pytest.raises(ValueError, match="label_type must be 'fine' or 'coarse'"):
        CIFAR100(tmp_path, label_type="medium")


def test_cifar100_is_not_found_in_a_cifar10_folder(tmp_path, rng):
    _write_cifar10(tmp_path, "python", rng)
    with pytest.raises(FileNotFoundError, match="cifar-100-python.tar.gz"):
        CIFAR100(tmp_path)


# ---- crafted pickles ----------------------------------------------------------------------------
class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def _malicious(kind, marker):
    command = f"open({str(marker)!r}, 'w').write('pwned')"
    if kind == "os.system":
        evil = _Evil(os.system, f"touch {marker}")
        return pickle.dumps({"data": evil, "labels": [0]}, protocol=2)
    if kind == "builtins.eval":
        return pickle.dumps({"data": _Evil(eval, command), "labels": [0]}, protocol=4)
    if kind == "raw GLOBAL opcode":  # hand-written, as an attacker would
        return b"\x80\x02cbuiltins\nexec\n(X" + struct.pack("<I", len(command)) + \
            command.encode() + b"tR."
    if kind == "object array":
        return pickle.dumps({"data": np.array([1, "x"], dtype=object), "labels": [0]}, protocol=4)
    if kind == "other codec":
        return b"\x80\x02c_codecs\nencode\n(X\x01\x00\x00\x00xX\x06\x00\x00\x00base64tR."
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, refused", [
    ("os.system", "posix.system|os.system|nt.system"),
    ("builtins.eval", "builtins.eval"),
    ("raw GLOBAL opcode", "builtins.exec"),
    ("object array", "object-dtype"),
    ("other codec", "encoding 'base64'"),
])
def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path, rng, kind, refused):
    folder, _, _ = _write_cifar10(tmp_path, "python", rng)
    marker = tmp_path / "pwned"
    (folder / "test_batch").write_bytes(_malicious(kind, marker))
    with pytest.raises(ValueError) as info:
        CIFAR10(tmp_path, train=False)
    message = str(info.value)
    assert "test_batch: refused to unpickle, nothing in it was run" in message
    assert any(r in message for r in refused.split("|")), message
    assert not marker.exists()
