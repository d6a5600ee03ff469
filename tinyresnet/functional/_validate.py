"""Input checks shared by the functional ops: clear errors at the op boundary.

Each message starts with the op's name, says what was expected and what came, so that a user never
meets a bare broadcasting error from deep inside an op.  Modules prefix their own qualified name.
"""
import numpy as np

from ..backend import get_array_module


def pair(value, name, op):
    """Turn an int or a 2-sequence into a (height, width) tuple of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None


def check_array(x, op, name="input", ndim=None, floating=True):
    """Check that x is an array of the expected rank (and a floating dtype)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{op}: {name} must be a NumPy or CuPy array, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        layouts = {2: "(N, features)", 4: "(N, C, H, W)"}
        raise ValueError(
            f"{op}: expected a {ndim}-D {name} {layouts.get(ndim, '')}".rstrip()
            + f", got shape {tuple(x.shape)}"
        )
    if floating and x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: expected a float32 or float64 {name}, got dtype {x.dtype}")


def check_same_dtype(op, **arrays):
    """Refuse mixed float32/float64 operands: NumPy would silently upcast the result."""
    present = {k: v for k, v in arrays.items() if v is not None}
    get_array_module(*present.values())
    dtypes = {k: v.dtype for k, v in present.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{k}={d}" for k, d in dtypes.items())
        raise TypeError(f"{op}: all operands must share one dtype (no silent upcast), got {listing}")


def check_finite(x, op, name="input"):
    """Raise ValueError when x holds NaN or Inf (used when a finite check is asked for)."""
    xp = get_array_module(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError(f"{op}: {name} contains NaN or Inf values")


def window_output_size(size, kernel, stride, padding, dilation, op, axis):
    """Floor-mode output size of a sliding window, with a clear error when the window does not fit."""
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"{op}: kernel {kernel} (dilation {dilation}, span {span}) is larger than the padded "
            f"input {axis} {size} + 2*{padding} = {size + 2 * padding}"
        )
    return (size + 2 * padding - span) // stride + 1


def check_window_args(kernel_size, stride, padding, dilation, op):
    """Normalise and validate (kernel_size, stride, padding, dilation) into pairs."""
    kernel_size = pair(kernel_size, "kernel_size", op)
    stride = pair(stride, "stride", op)
    padding = pair(padding, "padding", op)
    dilation = pair(dilation, "dilation", op)
    if min(kernel_size) < 1 or min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(
            f"{op}: kernel_size, stride and dilation must be >= 1 and padding >= 0, got "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}"
        )
    return kernel_size, stride, padding, dilation
