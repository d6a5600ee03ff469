"""Sequential: run children in order; backward runs them in reverse."""
from collections import OrderedDict

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """A chain of modules, named "0", "1", ... (or by an OrderedDict), as torch.nn.Sequential."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dy):
        for m in reversed(self._modules.values()):
            dy = m.backward(dy)
        return dy

    def __getitem__(self, index):
        """A child by position, or for a slice a Sequential of those children under their own keys
        (``seq[1:]`` holds "1", "2", ...), as torch.  The children keep their qualified names."""
        if isinstance(index, slice):
            part = Sequential()
            # Straight into _modules: registering by assignment would rename the children.
            part._modules.update(list(self._modules.items())[index])
            return part
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self
