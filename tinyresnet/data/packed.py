"""A packed image folder: every encoded image file of a folder in one ``.npz``, decoded in parallel.

A folder of 50,000 small JPEGs (CIFAR-10's training set, 44 MB of bytes) is awkward to copy to
another machine: per-file overhead dominates.  ``pack_folder`` concatenates the files' bytes
unchanged (no re-encoding, so no further loss) into one array and stores, beside it, where each
file starts, its class and its relative path:

    data     (B,) uint8      the files' bytes, one after another
    offsets  (N + 1,) int64  file i is data[offsets[i]:offsets[i + 1]]
    labels   (N,) int64      class index of file i (ImageFolder's: sorted class folder names)
    classes  (K,) str        the class names
    names    (N,) str        file i's path relative to the folder, for error messages

``unpack`` decodes it back into the ``(N, H, W, 3)`` uint8 array that
:func:`tinyresnet.data.cache.load_folder` builds from the folder itself, using several processes
(Pillow's decoder holds the GIL for a small JPEG, so threads do not help).  The file holds only
arrays of numbers and strings and is read with ``allow_pickle=False``; it is written atomically.
"""
import io
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._io import atomic_savez
from .imagefolder import ImageFolder

__all__ = ["pack_folder", "unpack", "is_packed"]

_KEYS = ("data", "offsets", "labels", "classes", "names")


def pack_folder(root, out):
    """Store every image file of image folder ``root`` in one ``.npz`` at ``out``.

    Returns the number of files packed.  Raises FileNotFoundError as ImageFolder does (no folder,
    no class folders, an empty class folder).
    """
    folder = ImageFolder(root)
    chunks = [Path(path).read_bytes() for path, _ in folder.samples]
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    names = [os.path.relpath(path, folder.root) for path, _ in folder.samples]
    atomic_savez(out, {
        "data": np.frombuffer(b"".join(chunks), dtype=np.uint8),
        "offsets": offsets,
        "labels": np.asarray(folder.targets, dtype=np.int64),
        "classes": np.asarray(folder.classes),
        "names": np.asarray(names),
    })
    return len(chunks)


def is_packed(path):
    """True when ``path`` is a file written by :func:`pack_folder`."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as archive:
            return all(key in archive.files for key in _KEYS)
    except (OSError, ValueError):
        return False


_worker = {}


def _open_worker(path):
    """Each worker process reads the packed file once (a few tens of MB), not once per task."""
    with np.load(path, allow_pickle=False) as archive:
        _worker.update(data=archive["data"], offsets=archive["offsets"], names=archive["names"])


def _decode_range(start, stop):
    """Decode files start..stop-1 of the worker's packed file into one (stop - start, H, W, 3)
    uint8 array."""
    data, offsets, names = _worker["data"], _worker["offsets"], _worker["names"]
    images = None
    for i in range(start, stop):
        try:
            with Image.open(io.BytesIO(data[offsets[i]:offsets[i + 1]].tobytes())) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"packed images: cannot decode '{names[i]}': {exc}") from exc
        if images is None:
            images = np.empty((stop - start,) + pixels.shape, dtype=np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise ValueError(
                f"packed images: '{names[i]}' is {pixels.shape[1]}x{pixels.shape[0]}, the others "
                f"{images.shape[2]}x{images.shape[1]}; unpacking needs images of one size"
            )
        images[i - start] = pixels
    return images


def unpack(path, processes=None):
    """Decode a packed folder.

    Parameters
    ----------
    path : a ``.npz`` written by :func:`pack_folder`
    processes : worker processes (default: the CPUs this process may use; 1 decodes in-process)

    Returns
    -------
    images : uint8 array (N, H, W, 3), in the folder's sample order
    labels : int64 array (N,)
    classes : list of the class names

    Raises
    ------
    ValueError : not a packed folder, an undecodable file, or images of different sizes
    """
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in _KEYS if key not in archive.files]
        if missing:
            raise ValueError(f"packed images: '{path}' is not a packed image folder "
                             f"(missing {', '.join(missing)}); make one with `tinyresnet data pack`")
        labels, classes = archive["labels"], [str(c) for c in archive["classes"]]
    n = len(labels)
    if n == 0:
        raise ValueError(f"packed images: '{path}' holds no images")
    processes = max(1, min(processes or len(os.sched_getaffinity(0)), n // 500 or 1))
    bounds = np.linspace(0, n, min(processes * 4, n) + 1).astype(int)
    ranges = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
    if processes == 1:
        _open_worker(path)
        try:
            parts = [_decode_range(a, b) for a, b in ranges]
        finally:
            _worker.clear()
    else:
        with ProcessPoolExecutor(processes, initializer=_open_worker, initargs=(str(path),)) as pool:
            parts = list(pool.map(_decode_range, *zip(*ranges)))
    shapes = {p.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise ValueError(f"packed images: '{path}' holds images of several sizes "
                         f"({', '.join(f'{s[1]}x{s[0]}' for s in sorted(shapes))})")
    return np.concatenate(parts), labels, classes
