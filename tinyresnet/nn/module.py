"""Module: the base of every layer and network.

A module's ``forward`` computes its output and keeps what its ``backward`` will need (the caches of
the functional ops it calls); ``backward(dy)`` adds the parameter gradients into ``p.grad`` and
returns dL/dinput.  A module may be called several times in one forward (torchvision's
``BasicBlock`` uses one ``relu`` twice): its caches form a stack and each backward pops the latest,
so backward, which runs the forward in reverse, meets them in the right order.  A call from outside
any module's forward starts a new pass: the caches an earlier pass left without a backward are
dropped, as PyTorch frees the graph of an output nobody keeps.  (So a module called twice at the
top level, outside any forward, keeps only its last call: put such steps in a module's forward.)

Children, parameters and buffers are registered by attribute assignment, as in PyTorch, so
``named_parameters`` and ``state_dict`` produce PyTorch's key names ("layer1.0.conv1.weight").
"""
from collections import OrderedDict, namedtuple
from contextlib import contextmanager

import numpy as np

from ..backend import get_array_module, to_device
from ..functional._validate import check_finite
from .parameter import Parameter

__all__ = ["Module", "no_grad", "is_grad_enabled", "set_check_finite"]

_grad_enabled = True
_check_finite_inputs = False
_call_depth = 0  # how many Module.__call__ are running: 0 means a call starts a new forward pass


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns, as torch.nn.Module's: two lists of keys."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


@contextmanager
def no_grad():
    """Inside this block modules keep no caches: inference uses less memory, backward is refused."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


def set_check_finite(enabled=True):
    """Ask every module to refuse inputs holding NaN or Inf (off by default: it costs a pass)."""
    global _check_finite_inputs
    _check_finite_inputs = bool(enabled)


class Module:
    """Base class: subclass, assign layers and Parameters in __init__, write forward and backward."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_qualname", "")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_caches", [])

    # ---- registration -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            buffers.pop(name, None), modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None), buffers.pop(name, None)
            modules[name] = value
            value._set_qualname(f"{self._qualname}.{name}" if self._qualname else name)
        elif name in params or name in modules:
            if value is not None:
                raise TypeError(
                    f"{self._describe()}: '{name}' holds a Parameter or Module; assign one, or None"
                )
            (params if name in params else modules)[name] = None
        elif name in buffers:
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            d = self.__dict__.get(store)
            if d is not None and name in d:
                return d[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register a Parameter (or None, for an absent optional one such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: {name} must be a Parameter or None")
        self._parameters[name] = param

    def register_buffer(self, name, array):
        """Register state that is saved in state_dict but not learned (BN running statistics)."""
        self._buffers[name] = array

    def add_module(self, name, module):
        setattr(self, name, module)

    def _set_qualname(self, name):
        object.__setattr__(self, "_qualname", name)
        for child_name, child in self._modules.items():
            if child is not None:
                child._set_qualname(f"{name}.{child_name}")

    def _describe(self):
        return f"{type(self).__name__} '{self._qualname}'" if self._qualname else type(self).__name__

    # ---- running ------------------------------------------------------------------------------
    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        global _call_depth
        if _call_depth == 0:
            self._clear_caches()
        _call_depth += 1
        try:
            if _check_finite_inputs:
                for i, a in enumerate(args):
                    if hasattr(a, "dtype") and a.dtype.kind == "f":
                        check_finite(a, "forward", name=f"input {i}")
            return self.forward(*args, **kwargs)
        except (ValueError, TypeError) as e:
            # Name the layer where bad input was caught; outer modules leave the message alone.
            # Chained, so the traceback still shows the line (often the user's) that failed.
            if type(e) in (ValueError, TypeError) and not getattr(e, "_tinyresnet_named", False):
                err = type(e)(f"{self._describe()}: {e}")
                err._tinyresnet_named = True
                raise err from e
            raise
        finally:
            _call_depth -= 1

    def _save(self, cache):
        """Push a forward cache for backward, unless inside no_grad()."""
        if _grad_enabled:
            self._caches.append(cache)

    def _pop_cache(self):
        """Hand the latest forward cache to backward once and release it (memory, as PyTorch frees
        its graph); a module called twice in a forward is backpropagated last call first."""
        if not self._caches:
            raise RuntimeError(
                f"{self._describe()}: backward called without a forward to match "
                f"(run forward first, outside no_grad(), and call backward once per forward)"
            )
        return self._caches.pop()

    def _clear_caches(self):
        """Drop every forward cache of this module and its descendants (no backward will follow)."""
        for m in self.modules():
            m._caches.clear()

    # ---- traversal ----------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yield (qualified name, module) for self and every descendant, depth first.

        A module reachable along two paths (shared by two parents) is listed once, under its first
        name, unless ``remove_duplicate=False``; as torch.nn.Module.named_modules.
        """
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(
                    memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
                )

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield (name, child) for the direct children, each module once (as torch)."""
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, store, prefix, recurse, remove_duplicate):
        seen = set()
        owners = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                  else [(prefix, self)])
        for mod_name, m in owners:
            for name, v in getattr(m, store).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mod_name}.{name}" if mod_name else name), v

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (qualified name, Parameter), PyTorch's names and order; a shared module or
        parameter is listed once (its first name), so an optimizer sees each parameter once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return [p for _, p in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (qualified name, array) for every buffer, each once, as named_parameters."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def apply(self, fn):
        """Call fn on every descendant and self (children first), as torch.nn.Module.apply."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ------------------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (to None by default, as PyTorch 2 does)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self):
        """name -> array for every parameter and buffer, in PyTorch's order and with its keys.

        The arrays are the live ones (no copy), as in PyTorch: training and ``load_state_dict``
        write into them, so copy them if you mean to keep the values.  A module shared by two
        parents appears under both names, as in PyTorch (``named_parameters`` lists it once).
        """
        sd = OrderedDict()
        for mod_name, m in self.named_modules(remove_duplicate=False):
            pre = f"{mod_name}." if mod_name else ""
            for name, p in m._parameters.items():
                if p is not None:
                    sd[pre + name] = p.data
            for name, b in m._buffers.items():
                if b is not None:
                    sd[pre + name] = b
        return sd

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters and buffers, checking names and shapes first.

        The values are written into the existing arrays (cast to their dtype, on their device), so
        arrays taken from ``state_dict()`` earlier see them, as in PyTorch.  Nothing is changed
        unless the whole dict fits.  With ``strict`` every key must match; the ValueError names
        the first missing, unexpected or mismatched key and the expected shape.

        Returns ``_IncompatibleKeys(missing_keys, unexpected_keys)``, a named tuple, as PyTorch.
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [
            k for k in own
            if k in state_dict and tuple(np.shape(state_dict[k])) != tuple(own[k].shape)
        ]
        problems = []
        if mismatched:
            k = mismatched[0]
            problems.append(
                f"size mismatch for '{k}': expected shape {tuple(own[k].shape)}, "
                f"got {tuple(np.shape(state_dict[k]))}"
            )
        if strict and missing:
            problems.append(f"missing key '{missing[0]}' (expected shape {tuple(own[missing[0]].shape)})")
        if strict and unexpected:
            problems.append(f"unexpected key '{unexpected[0]}'")
        if problems:
            counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mismatched"
            raise ValueError(
                f"{self._describe()}.load_state_dict: the state dict does not fit this model "
                f"(another architecture?): {'; '.join(problems)} [{counts}]"
            )
        for key, target in own.items():
            if key in state_dict:
                _copy_into(target, state_dict[key])
        return _IncompatibleKeys(missing, unexpected)

    # ---- device and dtype ---------------------------------------------------------------------
    def to(self, device_or_dtype):
        """Move every parameter, gradient and buffer to a device ('cpu', 'cuda') or cast the
        floating ones to a dtype (np.float32, np.float64).  Returns self."""
        if isinstance(device_or_dtype, str):
            convert = lambda a: to_device(a, device_or_dtype)  # noqa: E731
        else:
            dtype = np.dtype(device_or_dtype)
            convert = lambda a: a.astype(dtype) if a.dtype.kind == "f" else a  # noqa: E731
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = convert(p.data)
                    p.grad = None if p.grad is None else convert(p.grad)
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = convert(b)
            m._caches.clear()
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ---- printing -----------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        for name, child in self.named_children():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n" + "\n".join(lines) + "\n)"


def _copy_into(target, value):
    """Write value into the array target, cast to its dtype, on its device (NumPy or CuPy)."""
    xp = get_array_module(target)
    value = value.get() if type(value).__module__.startswith("cupy") else value
    target[...] = xp.asarray(np.asarray(value), dtype=target.dtype)
