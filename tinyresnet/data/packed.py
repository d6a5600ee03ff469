"""A packed image folder: every image file of a folder in one ``.npz``, to carry it as one file.

A folder of 50,000 small JPEGs (CIFAR-10's training set, 44 MB of bytes) is slow to copy to another
machine: per-file overhead dominates.  ``pack_folder`` concatenates the files' bytes unchanged (no
re-encoding, so no further loss) into one array and stores, beside it, where each file starts and
its path relative to the folder:

    data     (B,) uint8      the files' bytes, one after another
    offsets  (N + 1,) int64  file i is data[offsets[i]:offsets[i + 1]]
    names    (N,) str        file i's path relative to the folder ("cat/0001.jpg")

``extract`` writes the same files back, byte for byte, under another folder, which then trains
exactly as the original (``tinyresnet data pack`` / ``tinyresnet data extract``).  The file holds
only arrays of numbers and strings, is read with ``allow_pickle=False`` and written atomically.
"""
from pathlib import Path, PurePosixPath

import numpy as np

from .._io import atomic_savez
from .imagefolder import ImageFolder

__all__ = ["pack_folder", "extract"]


def pack_folder(root, out):
    """Store every image file of image folder ``root`` (ImageFolder's samples) in ``out`` (.npz).

    Returns the number of files packed.  Raises FileNotFoundError as ImageFolder does (no folder,
    no class folders, an empty class folder).
    """
    folder = ImageFolder(root)
    chunks = [Path(path).read_bytes() for path, _ in folder.samples]
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    names = [PurePosixPath(Path(path).relative_to(folder.root)).as_posix()
             for path, _ in folder.samples]
    atomic_savez(out, {"data": np.frombuffer(b"".join(chunks), dtype=np.uint8),
                       "offsets": offsets, "names": np.asarray(names)})
    return len(chunks)


def extract(path, out_dir):
    """Write the files of a packed folder under ``out_dir``; returns how many.

    Raises ValueError when ``path`` is not a packed folder or names a file outside ``out_dir``.
    """
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in ("data", "offsets", "names") if key not in archive.files]
        if missing:
            raise ValueError(f"'{path}' is not a packed image folder (no {', '.join(missing)}); "
                             "make one with `tinyresnet data pack FOLDER OUT.npz`")
        data, offsets, names = archive["data"], archive["offsets"], archive["names"]
    out_dir = Path(out_dir).resolve()
    for i, name in enumerate(names):
        target = (out_dir / str(name)).resolve()
        if out_dir not in target.parents:
            raise ValueError(f"'{path}': file name '{name}' lies outside the folder it extracts to")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            f.write(data[offsets[i]:offsets[i + 1]].tobytes())
    return len(names)
