"""A learnable tensor: ``.data`` holds the value, ``.grad`` the accumulated gradient (or None)."""

__all__ = ["Parameter"]


class Parameter:
    """A learnable array.

    Attributes
    ----------
    data : array (NumPy or CuPy)
    grad : array of the same shape, or None until a backward pass has written it
    requires_grad : optimizers skip parameters with requires_grad False (frozen layers)
    """

    def __init__(self, data, requires_grad=True):
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad

    def accumulate(self, g):
        """Add g to .grad (backward passes add, so shared or repeated use sums as it should)."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = g.copy()
        else:
            self.grad += g

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"
