"""Decode-once cache: an image folder of equal-sized images as one uint8 array on disk.

Decoding 50,000 CIFAR JPEGs with Pillow takes about half a minute of CPU per epoch; decoded, the
same images are 150 MB of uint8 pixels that load in a fraction of a second.  ``load_folder``
decodes the folder once (with a progress bar), stores ``images (N, H, W, C) uint8`` and ``labels
(N,) int64`` in one ``.npz`` file, and reuses it while the folder is unchanged.

Unchanged means the same *manifest*: the SHA-256 of every sample's relative path, class, size in
bytes and modification time (``st_mtime_ns``), in the folder's order.  Listing and ``stat``-ing the
files costs well under a second for CIFAR's 50,000; a file added, removed, renamed, rewritten or
touched changes the manifest, and the cache is rebuilt.

Where: the data folder may be read-only, so the cache lives in a per-user folder,
``$TINYRESNET_CACHE``, else ``$XDG_CACHE_HOME/tinyresnet``, else ``~/.cache/tinyresnet`` (or the
``cache_dir`` given), one file per folder named after the folder and a hash of its absolute path.
The file is written to a temporary name in the same folder and renamed into place
(``os.replace``), so a crash never leaves half a cache; it holds only arrays and is read with
``allow_pickle=False``.
"""
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .._io import atomic_savez
from .imagefolder import ImageFolder, load_image

__all__ = ["default_cache_dir", "cache_path", "folder_manifest", "load_folder"]

logger = logging.getLogger(__name__)

_FORMAT = 1


def default_cache_dir():
    """``$TINYRESNET_CACHE``, else ``$XDG_CACHE_HOME/tinyresnet``, else ``~/.cache/tinyresnet``."""
    if os.environ.get("TINYRESNET_CACHE"):
        return Path(os.environ["TINYRESNET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tinyresnet"


def cache_path(root, cache_dir=None):
    """The cache file of image folder ``root``: ``<cache_dir>/<folder name>-<path hash>.npz``."""
    root = Path(root).expanduser().resolve()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()).expanduser() / f"{root.name}-{key}.npz"


def folder_manifest(folder):
    """SHA-256 (hex) of each sample's relative path, class index, size and mtime, in order.

    Parameters
    ----------
    folder : ImageFolder
    """
    digest = hashlib.sha256()
    for path, label in folder.samples:
        stat = os.stat(path)
        rel = os.path.relpath(path, folder.root)
        digest.update(f"{rel}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _decode(folder, progress):
    """Every image of ``folder`` decoded into one (N, H, W, 3) uint8 array; ValueError when the
    images differ in size (a folder of mixed sizes needs resizing, not a cache)."""
    from tqdm.auto import tqdm

    images = None
    # disable=None: a bar on a terminal only, not in logs or captured output.
    bar = tqdm(folder.samples, desc=f"decoding {folder.root.name}", unit="img",
               disable=None if progress else True, dynamic_ncols=True)
    for i, (path, _) in enumerate(bar):
        pixels = np.asarray(load_image(path))
        if images is None:
            images = np.empty((len(folder),) + pixels.shape, dtype=np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise ValueError(
                f"image cache: '{path}' is {pixels.shape[1]}x{pixels.shape[0]} but "
                f"'{folder.samples[0][0]}' is {images.shape[2]}x{images.shape[1]}; a decode-once "
                "cache needs images of one size (use --recipe imagenet, which resizes)"
            )
        images[i] = pixels
    return images


def _read(path, manifest):
    """(images, labels) from the cache file when it holds this manifest, else None."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if int(archive["format"]) != _FORMAT or str(archive["manifest"]) != manifest:
                return None
            return archive["images"], archive["labels"]
    except (OSError, KeyError, ValueError) as err:
        logger.warning("image cache: ignoring unreadable '%s' (%s); rebuilding it", path, err)
        return None


def load_folder(root, cache_dir=None, progress=True):
    """The images and labels of image folder ``root``, from the cache when it is current.

    Parameters
    ----------
    root : path of a folder with one sub-folder of equal-sized images per class
    cache_dir : folder of the cache files (default: :func:`default_cache_dir`)
    progress : show a progress bar while decoding (when stderr is a terminal)

    Returns
    -------
    images : uint8 array (N, H, W, 3), in the ImageFolder's sample order
    labels : int64 array (N,)
    folder : the ImageFolder (classes, samples)
    built : True when the folder was decoded now, False when the cache was reused

    Raises
    ------
    FileNotFoundError : no such folder or no images (from ImageFolder)
    ValueError : images of different sizes, or an image that cannot be decoded
    OSError : the cache folder cannot be written
    """
    folder = ImageFolder(root)
    path = cache_path(folder.root, cache_dir)
    manifest = folder_manifest(folder)
    labels = np.asarray(folder.targets, dtype=np.int64)
    cached = _read(path, manifest) if path.is_file() else None
    if cached is not None:
        logger.debug("image cache: %d images from %s", len(labels), path)
        return cached[0], cached[1], folder, False
    images = _decode(folder, progress)
    try:
        atomic_savez(path, {"format": np.asarray(_FORMAT), "manifest": np.asarray(manifest),
                             "images": images, "labels": labels,
                             "classes": np.asarray(folder.classes)})
    except OSError as err:
        raise OSError(
            f"image cache: cannot write '{path}' ({err}); set TINYRESNET_CACHE or --cache-dir to a "
            "writable folder"
        ) from err
    logger.debug("image cache: decoded %d images into %s", len(labels), path)
    return images, labels, folder, True
