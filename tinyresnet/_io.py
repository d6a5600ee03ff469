"""Writing files so that a crash never leaves half of one: checkpoints, caches, packed data."""
import contextlib
import os
import tempfile

import numpy as np

__all__ = ["atomic_savez"]


def atomic_savez(path, arrays):
    """np.savez to a temporary sibling, fsync, then os.replace over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Whatever stopped us (a full disk, Ctrl-C, a crash before the rename), the old file is
        # untouched; only the temporary one is ours to remove.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Persist the rename itself (the directory entry); not possible on every platform.
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
