"""Split memory-bound NumPy work over the CPU cores.

BLAS runs a matrix product on every core, but NumPy runs a copy, a ufunc or a reduction on one.
Those release the GIL while they run, so threads can run them side by side on disjoint slices:
``parallel(fn, n, like)`` calls ``fn(start, stop)`` on consecutive slices of ``range(n)``, one per
thread, the calling thread taking the first.  The ops use it where their time goes to such passes
(im2col's copies, batch norm, ReLU), split over channels, which are contiguous blocks in the
channel-major layout.  CuPy arrays never come here: the GPU parallelizes each call by itself.

``set_num_threads(n)`` chooses the thread count (default: ``OMP_NUM_THREADS`` if set, else the cores
this process may run on), as ``torch.set_num_threads`` does for PyTorch.
"""
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["set_num_threads", "get_num_threads", "parallel"]

# Below this many elements per thread, handing work to a thread costs more than it saves.
MIN_ELEMENTS_PER_THREAD = 1 << 18

_num_threads = None
_pool = None  # worker threads, one fewer than _num_threads: the caller works too


def _default_num_threads():
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def get_num_threads():
    """Threads the functional ops split NumPy work over (BLAS has its own: threadpoolctl sets
    those)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(n):
    """Use n threads (n >= 1) for the ops' NumPy passes; returns the previous count."""
    global _num_threads, _pool
    if int(n) < 1:
        raise ValueError(f"set_num_threads: expected a thread count >= 1, got {n!r}")
    previous = get_num_threads()
    if _pool is not None:
        _pool.shutdown()
        _pool = None
    _num_threads = int(n)
    return previous


def parallel(fn, n, like):
    """Run ``fn(start, stop)`` over consecutive slices covering range(n), in parallel when worth it.

    ``like`` is the largest array the call touches: CuPy arrays, and NumPy arrays too small to
    give every thread MIN_ELEMENTS_PER_THREAD elements, run in one call.  The slices must write
    disjoint memory.
    """
    global _pool
    if type(like).__module__.startswith("cupy"):
        threads = 1
    else:
        threads = min(get_num_threads(), n, like.size // MIN_ELEMENTS_PER_THREAD)
    if threads <= 1:
        fn(0, n)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(get_num_threads() - 1, thread_name_prefix="tinyresnet")
    bounds = [n * k // threads for k in range(threads + 1)]
    futures = [_pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, threads)]
    fn(bounds[0], bounds[1])
    for future in futures:
        future.result()
