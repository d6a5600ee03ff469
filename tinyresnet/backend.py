"""The one place that knows about NumPy versus CuPy.

Every other module writes ``xp = get_array_module(x)`` and then uses ``xp`` exactly as it would use
``numpy``.  CuPy is imported lazily, on the first request for the GPU, so ``import tinyresnet``
never needs it.
"""
import numpy as np

__all__ = [
    "get_array_module",
    "cupy_available",
    "to_device",
    "to_numpy",
    "device_of",
    "default_dtype",
    "set_default_dtype",
]

_CUDA_HELP = (
    "tinyresnet: the 'cuda' device needs CuPy and an NVIDIA GPU. Install the extra that matches "
    "your CUDA toolkit: pip install 'tinyresnet[cuda12]' or pip install 'tinyresnet[cuda13]'."
)

_cupy = None
_default_dtype = np.float32


def _import_cupy():
    """Import CuPy once; return the module or None when it (or a GPU) is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
            _cupy = cupy
        except Exception:  # ImportError, or CUDA errors when no driver/GPU is present
            _cupy = False
    return _cupy or None


def cupy_available():
    """True when CuPy imports and sees at least one GPU."""
    return _import_cupy() is not None


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy``: the module the given arrays belong to.

    Raises TypeError when NumPy and CuPy arrays are mixed, since one op cannot work on both.
    """
    if len(arrays) == 1:  # the common call, once or more per layer: no set to build
        return _import_cupy() if type(arrays[0]).__module__.startswith("cupy") else np
    modules = set()
    for a in arrays:
        if a is None:
            continue
        modules.add("cupy" if type(a).__module__.startswith("cupy") else "numpy")
    if len(modules) > 1:
        raise TypeError(
            "tinyresnet: got a mix of NumPy and CuPy arrays; move them to one device first "
            "(model.to('cuda') and tinyresnet.backend.to_device(x, 'cuda'), or both to 'cpu')"
        )
    if modules == {"cupy"}:
        return _import_cupy()
    return np


def device_of(x):
    """'cuda' for a CuPy array, 'cpu' otherwise."""
    return "cuda" if type(x).__module__.startswith("cupy") else "cpu"


def to_device(x, device):
    """Move an array to ``'cpu'`` (NumPy) or ``'cuda'`` (CuPy); a no-op when it is already there."""
    if device == "cpu":
        return to_numpy(x)
    if device in ("cuda", "gpu") or str(device).startswith("cuda:"):
        cupy = _import_cupy()
        if cupy is None:
            raise RuntimeError(_CUDA_HELP)
        return cupy.asarray(x)
    raise ValueError(f"tinyresnet: unknown device {device!r}; expected 'cpu' or 'cuda'")


def to_numpy(x):
    """Return a NumPy array for a NumPy or CuPy array (copying from the GPU when needed)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def default_dtype():
    """The dtype new parameters are created with (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype):
    """Set the dtype for new parameters: np.float32 (default) or np.float64 (gradient checks)."""
    global _default_dtype
    dtype = np.dtype(dtype).type
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"tinyresnet: default dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype
