"""The ops' CPU threads: a pass split into blocks of rows, one block per core.

NumPy runs a copy or a ufunc on one core, and OpenBLAS runs a matrix product on its own threads,
which after each product keep spinning on the other cores for a while (up to 2^28 cycles, about
0.1 s) before they sleep.  So on two cores a CIFAR ResNet's step halved its products' time and not
its unfoldings' (im2col), a third of it, and a Python thread that took half of an unfolding found
the second core busy with BLAS's spinning thread.  Here the ops split their work themselves:

``parallel_for(fn, n)`` calls ``fn(lo, hi)`` on contiguous blocks of ``range(n)``, one block per
thread, the calling thread taking the first; it returns when every block is done and re-raises
the first exception.  Each block writes memory no other block writes.  NumPy releases the GIL
inside its loops and BLAS calls, so the blocks run side by side.  ``matmul`` splits a product
this way, each block a single-threaded BLAS call; conv_blocked.py splits the batch of a
convolution's unfolding and products.

The number of threads is ``set_num_threads(n)``, as in ``torch.set_num_threads`` (default:
OMP_NUM_THREADS or OPENBLAS_NUM_THREADS when set, else the cores this process may run on).  The
products inside the ops run single-threaded BLAS on these threads, whatever BLAS's own setting,
which stays as the user set it for NumPy code outside the ops.  ``set_num_threads(1)`` runs every
op in the calling thread.  The split changes no value where each block does the same arithmetic
on its own elements (batch norm, ReLU, pooling, the optimizers: the same bits); a sum split over
blocks (a convolution's weight gradient) is summed in another order, within float round-off.
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend import get_array_module

__all__ = ["set_num_threads", "get_num_threads", "parallel_for", "parallel_rows", "elementwise",
           "matmul", "blas_single_threaded"]

MIN_ELEMENTS = 1 << 16  # per thread: below this a hand-off (tens of microseconds) is not worth it
GROUP_BYTES = 1 << 20  # parallel_rows: rows per group, about the size of a core's L2 cache


def _default_threads():
    """OMP_NUM_THREADS or OPENBLAS_NUM_THREADS when set (what limits PyTorch's and BLAS's threads
    of a process limits these too, as under ``mpiexec``), else the cores this process may use."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(variable, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_threads = _default_threads()
_pool = None
_pool_lock = threading.Lock()
_local = threading.local()  # .inside: this thread is running a block of a split


def set_num_threads(n):
    """Run the ops' CPU work on n threads (n >= 1); returns the previous number.

    Raises ValueError for anything but an integer >= 1.  NumPy code outside the ops keeps BLAS's
    own thread setting (threadpoolctl, ``OPENBLAS_NUM_THREADS``).
    """
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected an integer >= 1, got {n!r}")
    with _pool_lock:
        previous, _threads = _threads, int(n)
        if _pool is not None and _pool._max_workers != _threads - 1:
            _pool.shutdown(wait=True)
            _pool = None
    return previous


def get_num_threads():
    """The number of threads the ops' CPU work is split over."""
    return _threads


def _workers():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="tinyresnet")
        return _pool


def _forget_pool():
    """In a forked child the pool's threads do not exist: start a new pool on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def blocks(n, parts):
    """``parts`` contiguous (lo, hi) blocks covering range(n), as even as can be, none empty."""
    parts = max(1, min(parts, n))
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


def _block(fn, lo, hi):
    _local.inside = True
    try:
        fn(lo, hi)
    finally:
        _local.inside = False


def parallel_for(fn, n, elements=None, xp=np):
    """Run fn(lo, hi) over blocks of range(n), one per thread; wait for all of them.

    ``elements``: how many array elements the whole pass touches; a pass with fewer than
    MIN_ELEMENTS per thread runs in the calling thread.  Called from inside a block (a nested
    split), it runs in the calling thread too.  ``xp``: the array module of the work; on the GPU
    (CuPy) fn(0, n) runs once, its kernels already spread over the device.
    """
    parts = _threads
    if elements is not None:
        parts = min(parts, elements // MIN_ELEMENTS)
    if parts <= 1 or n <= 1 or xp is not np or getattr(_local, "inside", False):
        fn(0, n)
        return
    (lo, hi), *rest = blocks(n, parts)
    futures = [_workers().submit(_block, fn, a, b) for a, b in rest]
    try:
        _block(fn, lo, hi)
    finally:
        for f in futures:  # wait for every block, even when this one failed: they write our memory
            f.exception()
    for f in futures:
        f.result()


def parallel_rows(fn, rows, row_bytes, elements=None, xp=np):
    """Run fn(s) on slices s of range(rows), groups of consecutive rows of about GROUP_BYTES
    each (one row at least); each thread runs its share of the groups in turn.

    For a computation of several passes over the same rows (batch norm's per-channel formulas):
    each pass over a group finds it in the core's cache instead of main memory.
    """
    per_group = max(1, GROUP_BYTES // max(1, row_bytes)) if xp is np else rows  # GPU: one call

    def groups(lo, hi):
        for start in range(lo, hi, per_group):
            fn(slice(start, min(start + per_group, hi)))

    parallel_for(groups, rows, elements, xp)


def elementwise(ufunc, *operands, out):
    """``ufunc(*operands, out=out)``, split over the threads; returns out.

    The operands are arrays of out's shape (any memory order) or scalars.  The split runs along
    out's outermost axis in memory (the channels of a channel-major activation), so that each
    thread writes one contiguous part of it.  On the GPU: one call.
    """
    if not isinstance(out, np.ndarray) or out.ndim == 0 or out.size < 2 * MIN_ELEMENTS:
        return ufunc(*operands, out=out)  # the GPU, or too small to split
    axis = max(range(out.ndim), key=lambda d: (out.shape[d] > 1, abs(out.strides[d])))

    def block(lo, hi):
        part = (slice(None),) * axis + (slice(lo, hi),)
        ufunc(*(a[part] if isinstance(a, np.ndarray) and a.ndim else a for a in operands),
              out=out[part])

    parallel_for(block, out.shape[axis], elements=out.size)
    return out


def matmul(a, b, out=None):
    """a @ b for 2-D arrays (into ``out`` when given); on the CPU the output's longer side is
    split over the threads, each block one single-threaded BLAS call.  On the GPU: one call."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return get_array_module(a, b).matmul(a, b, out=out)
    if getattr(_local, "inside", False):  # already one block of a split, BLAS single-threaded
        return np.matmul(a, b, out=out)
    m, n = a.shape[0], b.shape[1]
    if a.size + b.size + m * n < 2 * MIN_ELEMENTS:  # too small to split, or for BLAS's threads
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    if n >= m:
        def block(lo, hi):
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
    else:
        def block(lo, hi):
            np.matmul(a[lo:hi], b, out=out[lo:hi])
    with blas_single_threaded():
        parallel_for(block, max(m, n), elements=a.size + b.size + out.size)
    return out


_blas = None


def blas_single_threaded():
    """A context in which the BLAS libraries NumPy loaded run one thread per call (threadpoolctl;
    about 10 microseconds to enter and leave).  The setting is the process's: enter it from
    the thread that splits the work, not from inside a block."""
    global _blas
    if _blas is None:
        import threadpoolctl

        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if all(lib.num_threads == 1 for lib in _blas.lib_controllers):
        return contextlib.nullcontext()  # already so (one thread asked for, or --threads 1)
    return _blas.limit(limits=1)
