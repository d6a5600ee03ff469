"""CIFAR-10 and CIFAR-100 from the official files on local disk (nothing is downloaded).

Get them from https://www.cs.toronto.edu/~kriz/cifar.html and put, in the folder you pass as
``root``, either an archive as downloaded or the folder it unpacks to:

=========  ============================  ======================  ==============================
dataset    Python version                binary version          files inside
=========  ============================  ======================  ==============================
CIFAR-10   cifar-10-python.tar.gz        cifar-10-binary.tar.gz  data_batch_1..5, test_batch,
           -> cifar-10-batches-py/       -> cifar-10-batches-bin/  batches.meta (.bin / .txt)
CIFAR-100  cifar-100-python.tar.gz       cifar-100-binary.tar.gz train, test, meta
           -> cifar-100-python/          -> cifar-100-binary/    (train.bin, test.bin, *.txt)
=========  ============================  ======================  ==============================

Archives are read in place (never extracted).  The binary records are 1 label byte (CIFAR-100:
coarse then fine label) followed by 3,072 pixel bytes: the 32x32 red plane, then green, then
blue, row-major.  The Python version is a pickled dict per file; pickle can run arbitrary code,
so it is read with a restricted unpickler that builds only dicts, lists, strings, numbers and
plain NumPy arrays and refuses every other global (see ``_CifarUnpickler``).

A sample is ``(image, label)``: without a transform the image is the raw HWC uint8 (32, 32, 3)
array, so ``transforms.ToArray()`` (and usually ``Normalize``) belong at the end of the transform.
"""
import codecs
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset

try:  # NumPy 2 moved the array reconstructor; pickles name either place.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["CIFAR10", "CIFAR100"]

_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_PIXELS = 32 * 32 * 3

# Where each version's files live, and what they are called.
_LAYOUTS = {
    "CIFAR-10": {
        "python": dict(folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
                       train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                       meta="batches.meta"),
        "binary": dict(folder="cifar-10-batches-bin", archive="cifar-10-binary.tar.gz",
                       train=[f"data_batch_{i}.bin" for i in range(1, 6)], test=["test_batch.bin"],
                       meta="batches.meta.txt"),
    },
    "CIFAR-100": {
        "python": dict(folder="cifar-100-python", archive="cifar-100-python.tar.gz",
                       train=["train"], test=["test"], meta="meta"),
        "binary": dict(folder="cifar-100-binary", archive="cifar-100-binary.tar.gz",
                       train=["train.bin"], test=["test.bin"], meta="fine_label_names.txt"),
    },
}


# ---- the restricted unpickler -----------------------------------------------------------------
class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a CIFAR file never holds."""


def _dtype(*args):
    """numpy.dtype for the unpickler: plain numeric dtypes only (an object dtype would let the
    pickle hand arbitrary objects to the array)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise _Refused("refusing an object-dtype array; expected plain numbers")
    return dtype


def _latin1_encode(text, encoding="utf-8"):
    """_codecs.encode as Python 3 writes bytes into protocol-2 pickles: latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise _Refused(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # as the official (NumPy 1) files
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # as NumPy 2 writes it
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,  # bytes in protocol-2 pickles written by Python 3
}


class _CifarUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` knows only the globals a CIFAR batch needs.

    Every way a pickle can call code (REDUCE, BUILD, INST, OBJ, NEWOBJ, EXT) starts from a global
    that ``find_class`` resolves, so refusing every other global means no other code runs.
    """

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(
                f"refusing the global {module}.{name}: a CIFAR file holds only dicts, lists, "
                "strings, numbers and NumPy arrays"
            ) from None

    def persistent_load(self, pid):
        raise _Refused("refusing a persistent id; a CIFAR file has none")


def _unpickle(data, where):
    """The dict in a CIFAR Python-version file; ValueError naming the file for anything else."""
    try:
        # The official files were written by Python 2: latin-1 maps its byte strings one to one.
        obj = _CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Refused as exc:
        raise ValueError(
            f"{where}: refused to unpickle, nothing in it was run ({exc}); is this file really "
            "from the official CIFAR archive?"
        ) from exc
    except Exception as exc:
        raise ValueError(f"{where}: not a valid CIFAR Python-version file ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, got {type(obj).__name__}")
    return obj


# ---- where the files are ----------------------------------------------------------------------
class _Folder:
    def __init__(self, path):
        self.path = Path(path)

    def where(self, name):
        return str(self.path / name)

    def read_all(self, names, dataset):
        """{name: bytes} for the files ``names``; FileNotFoundError for a missing one."""
        for name in names:
            if not (self.path / name).is_file():
                _missing(self.where(name), dataset)
        return {name: (self.path / name).read_bytes() for name in names}


class _Archive:
    """A .tar.gz read in place, members looked up under the archive's top folder."""

    def __init__(self, path, folder):
        self.path, self.folder = Path(path), folder

    def where(self, name):
        return f"{self.path}!{self.folder}/{name}"

    def read_all(self, names, dataset):
        """{name: bytes} in one pass over the archive (a gzip stream is cheap to read in order
        and costly to seek in)."""
        wanted = {f"{self.folder}/{name}": name for name in names}
        found = {}
        with tarfile.open(self.path, "r|*") as tar:
            for member in tar:
                name = wanted.get(member.name.removeprefix("./"))
                if name is not None and member.isfile():
                    found[name] = tar.extractfile(member).read()
        for name in names:
            if name not in found:
                _missing(self.where(name), dataset)
        return {name: found[name] for name in names}

    def names(self):
        with tarfile.open(self.path, "r|*") as tar:
            return {member.name.removeprefix("./") for member in tar}


def _missing(where, dataset):
    raise FileNotFoundError(
        f"{dataset.replace('-', '')}: '{where}' is missing; the {dataset} copy is incomplete. "
        f"Download it again from {_URL}"
    )


def _find(dataset, root):
    """(version, source) for the first copy of ``dataset`` found at ``root``."""
    root = Path(root).expanduser()
    layouts = _LAYOUTS[dataset]
    if root.is_file() and tarfile.is_tarfile(root):
        names = _Archive(root, "").names()
        for version, layout in layouts.items():
            if f"{layout['folder']}/{layout['meta']}" in names:
                return version, _Archive(root, layout["folder"])
    for version, layout in layouts.items():
        for folder in (root / layout["folder"], root):
            if (folder / layout["meta"]).is_file():
                return version, _Folder(folder)
    for version, layout in layouts.items():
        if (root / layout["archive"]).is_file():
            return version, _Archive(root / layout["archive"], layout["folder"])
    python, binary = layouts["python"], layouts["binary"]
    raise FileNotFoundError(
        f"{dataset.replace('-', '')}: no {dataset} files found at '{root}'. Download the Python "
        f"version ({python['archive']}) or the binary version ({binary['archive']}) from {_URL} "
        f"and put the archive, or the folder it unpacks to ({python['folder']}/ or "
        f"{binary['folder']}/), in that folder (e.g. '{root / python['archive']}'). "
        "Nothing is downloaded automatically."
    )


# ---- the two formats --------------------------------------------------------------------------
def _images(flat, where):
    """(N, 3072) uint8 rows (R plane, G plane, B plane) -> (N, 32, 32, 3) HWC uint8."""
    if not (isinstance(flat, np.ndarray) and flat.dtype == np.uint8 and flat.ndim == 2
            and flat.shape[1] == _PIXELS):
        raise ValueError(
            f"{where}: expected 'data' as a uint8 array of shape (N, {_PIXELS}), got "
            f"{getattr(flat, 'dtype', type(flat).__name__)} {getattr(flat, 'shape', '')}"
        )
    return np.ascontiguousarray(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _read_python(files, source, label_key):
    images, labels = [], []
    for name, data in files.items():
        where = source.where(name)
        batch = _unpickle(data, where)
        if "data" not in batch or label_key not in batch:
            raise ValueError(f"{where}: expected the keys 'data' and '{label_key}', got "
                             f"{sorted(map(str, batch))}")
        images.append(_images(batch["data"], where))
        labels.append(np.asarray(batch[label_key], dtype=np.int64).reshape(-1))
        if len(labels[-1]) != len(images[-1]):
            raise ValueError(f"{where}: {len(images[-1])} images but {len(labels[-1])} labels")
    return np.concatenate(images), np.concatenate(labels)


def _read_binary(files, source, label_bytes, label_offset):
    images, labels = [], []
    record = label_bytes + _PIXELS
    for name, data in files.items():
        raw = np.frombuffer(data, dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise ValueError(
                f"{source.where(name)}: {raw.size} bytes is not a whole number of {record}-byte "
                "records; the file is truncated or not a CIFAR binary file"
            )
        rows = raw.reshape(-1, record)
        labels.append(rows[:, label_offset].astype(np.int64))
        images.append(_images(rows[:, label_bytes:], source.where(name)))
    return np.concatenate(images), np.concatenate(labels)


def _load(dataset, root, train, label="fine"):
    """(images (N, 32, 32, 3) uint8, labels (N,) int64, class names)."""
    version, source = _find(dataset, root)
    layout = _LAYOUTS[dataset][version]
    cifar100 = dataset == "CIFAR-100"
    if version == "binary" and cifar100:
        label_bytes, offset, meta = 2, (0 if label == "coarse" else 1), f"{label}_label_names.txt"
    else:
        label_bytes, offset, meta = 1, 0, layout["meta"]
    batches = layout["train" if train else "test"]
    files = source.read_all([meta, *batches], dataset)
    meta_bytes = files.pop(meta)
    if version == "python":
        images, labels = _read_python(files, source, f"{label}_labels" if cifar100 else "labels")
        classes_key = f"{label}_label_names" if cifar100 else "label_names"
        classes = _unpickle(meta_bytes, source.where(meta)).get(classes_key)
        if not isinstance(classes, list):
            raise ValueError(f"{source.where(meta)}: expected a list under '{classes_key}'")
    else:
        images, labels = _read_binary(files, source, label_bytes, offset)
        text = meta_bytes.decode("utf-8", errors="replace")
        classes = [line.strip() for line in text.splitlines() if line.strip()]
    return images, labels, [str(c) for c in classes]


class CIFAR10(ArrayDataset):
    """CIFAR-10: 50,000 training and 10,000 test 32x32 colour images in 10 classes.

    Parameters
    ----------
    root : folder holding an official archive or its unpacked folder (module docstring), or the
        path of the archive itself
    train : the training split (True) or the test split
    transform : callable applied to each HWC uint8 (32, 32, 3) image, or None

    Attributes: ``images`` (N, 32, 32, 3) uint8, ``labels`` (N,) int64, ``classes``.
    """

    def __init__(self, root, train=True, transform=None):
        images, labels, classes = _load("CIFAR-10", root, train)
        super().__init__(images, labels, transform=transform, classes=classes)


class CIFAR100(ArrayDataset):
    """CIFAR-100: like CIFAR-10 with 100 fine classes grouped into 20 coarse superclasses.

    Parameters
    ----------
    root, train, transform : as for :class:`CIFAR10`
    label_type : 'fine' (100 classes, the usual benchmark) or 'coarse' (20 superclasses)
    """

    def __init__(self, root, train=True, transform=None, label_type="fine"):
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', got {label_type!r}")
        images, labels, classes = _load("CIFAR-100", root, train, label_type)
        super().__init__(images, labels, transform=transform, classes=classes)
        self.label_type = label_type
