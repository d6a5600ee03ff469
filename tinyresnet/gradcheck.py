r"""Numerical gradient checking: is a hand-written backward the derivative of its forward?

Central differences, in float64, of the scalar  L = sum(f(x) * dy)  for a fixed random dy:

.. math::  \frac{\partial L}{\partial x_i} \approx \frac{L(x + h e_i) - L(x - h e_i)}{2h}

with truncation error O(h^2) and round-off O(eps / h); h = 1e-6 balances the two in float64.
The outputs are differenced before they are weighted by dy, so that outputs x_i does not reach
cancel exactly.  dy is drawn from its own seed: a dy equal to (or a multiple of) the input would
make some true gradients vanish (batch norm's, for one) and the check meaningless.
For whole networks the element-by-element check costs two forwards per parameter, so
``check_direction`` (after Chainer's ``check_backward``) compares one directional derivative along
a random direction v instead:  (L(theta + h v) - L(theta - h v)) / 2h  against  <grad L, v>.

Errors are relative: norm-wise ||a - n|| / max(||a||, ||n||), and element-wise
|a - n| / max(|a| + |n|, floor) with the worst element reported (the floor, 1e-6 times the largest
|n|, keeps elements that are pure round-off from dominating).  A tensor passes when its norm-wise
error is below ``tol``, or when every |a - n| is below ``atol``: a gradient that is exactly zero
in theory (the bias of a conv followed by batch norm) is all round-off, and no relative measure
of round-off means anything.
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = [
    "numerical_gradient", "rel_error", "GradError", "GradCheckReport",
    "check_op", "check_module", "check_direction",
]


def numerical_gradient(f, x, dy=None, h=1e-6):
    """dL/dx for L = sum(f(x) * dy) (or L = f(x) when f returns a scalar), by central differences.

    ``x`` is perturbed in place and restored; f is called 2 * x.size times.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient: x must be contiguous so it can be perturbed in place")

    def value():
        # a copy: f may return a view of x (flatten, identity), which restoring x would undo
        return np.array(to_numpy(f(x)), dtype=np.float64)

    weights = 1.0 if dy is None else np.asarray(to_numpy(dy), dtype=np.float64)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i].item()
        flat[i] = old + h
        plus = value()
        flat[i] = old - h
        minus = value()
        flat[i] = old
        # Difference the outputs before weighting by dy: outputs that x_i does not touch then
        # cancel exactly, instead of adding the round-off of a large sum.
        g[i] = float(((plus - minus) * weights).sum()) / (2 * h)
    return grad


@dataclass
class GradError:
    """How far an analytic gradient is from the numerical one."""

    name: str
    norm_error: float
    max_abs_error: float
    max_error: float
    worst_index: tuple
    analytic_at_worst: float
    numeric_at_worst: float

    def passed(self, tol=1e-7, atol=1e-9):
        return self.norm_error < tol or self.max_abs_error < atol

    def __str__(self):
        return (f"{self.name}: rel. error norm-wise {self.norm_error:.2e}, element-wise max "
                f"{self.max_error:.2e} at {self.worst_index} (analytic {self.analytic_at_worst:.8g} "
                f"vs numeric {self.numeric_at_worst:.8g})")


def rel_error(analytic, numeric, name="gradient"):
    """Compare two gradients; returns a GradError (norm-wise, element-wise worst and where)."""
    a = np.asarray(to_numpy(analytic), dtype=np.float64)
    n = np.asarray(to_numpy(numeric), dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"rel_error: {name} has shape {a.shape}, numeric gradient {n.shape}")
    diff = np.abs(a - n)
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    norm_error = float(np.linalg.norm(diff) / scale) if scale > 0 else 0.0
    floor = max(1e-6 * float(np.abs(n).max(initial=0.0)), 1e-300)
    elementwise = diff / np.maximum(np.abs(a) + np.abs(n), floor)
    if elementwise.size == 0:
        return GradError(name, norm_error, 0.0, 0.0, (), 0.0, 0.0)
    worst = np.unravel_index(int(np.argmax(elementwise)), elementwise.shape)
    return GradError(name, norm_error, float(diff.max()), float(elementwise[worst]), tuple(int(i) for i in worst),
                     float(a[worst]), float(n[worst]))


@dataclass
class GradCheckReport:
    """The errors of every checked tensor; ``ok`` when every one passes (see the module docstring)."""

    errors: list = field(default_factory=list)
    tol: float = 1e-7
    atol: float = 1e-9

    @property
    def ok(self):
        return all(e.passed(self.tol, self.atol) for e in self.errors)

    @property
    def worst(self):
        return max(self.errors, key=lambda e: e.norm_error, default=None)

    def __str__(self):
        verdict = "passed" if self.ok else "FAILED"
        lines = [f"gradient check {verdict} (tolerance {self.tol:g})"]
        lines += [("  ok    " if e.passed(self.tol, self.atol) else "  WRONG ") + str(e)
                  for e in self.errors]
        return "\n".join(lines)


def _as_tuple(g):
    return g if isinstance(g, tuple) else (g,)


def check_op(forward, backward, args, kwargs=None, wrt=None, names=None, tol=1e-7, h=1e-6,
             seed=12345):
    """Check a functional pair ``y, cache = forward(*args, **kwargs)``, ``grads = backward(dy, cache)``.

    ``backward``'s outputs are matched, in order, with the arguments listed in ``wrt`` (default:
    every floating-point array argument).  Arguments must be float64 for an honest check.
    Returns a GradCheckReport.
    """
    kwargs = kwargs or {}
    args = list(args)
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if hasattr(a, "dtype") and a.dtype.kind == "f"]
    names = names or [f"d(arg {i})" for i in wrt]
    y, cache = forward(*args, **kwargs)
    xp = get_array_module(y)
    rng = np.random.default_rng(seed)
    dy = xp.asarray(rng.standard_normal(np.shape(y)))
    grads = _as_tuple(backward(dy, cache))
    report = GradCheckReport(tol=tol)
    for i, g, name in zip(wrt, grads, names):
        if g is None:
            continue
        numeric = numerical_gradient(lambda _: forward(*args, **kwargs)[0], args[i], dy, h)
        report.errors.append(rel_error(g, numeric, name))
    return report


def check_module(module, x, tol=1e-7, h=1e-6, seed=12345, inputs=True):
    """Check a module's backward: dL/dx (when ``inputs``) and dL/dp for every parameter.

    The module should hold float64 parameters (``module.double()``) and x be float64.  Modes are
    left as set (BN in training mode is checked through its batch statistics).
    """
    rng = np.random.default_rng(seed)
    y = module(x)
    xp = get_array_module(y)
    dy = xp.asarray(rng.standard_normal(y.shape))
    module.zero_grad()
    dx = module.backward(dy)
    report = GradCheckReport(tol=tol)

    def f(_):
        return module(x)

    if inputs:
        report.errors.append(rel_error(dx, numerical_gradient(f, x, dy, h), "input"))
    for name, p in module.named_parameters():
        report.errors.append(rel_error(p.grad, numerical_gradient(f, p.data, dy, h), name))
    object.__setattr__(module, "_cache", None)
    for m in module.modules():
        object.__setattr__(m, "_cache", None)
    return report


def check_direction(module, x, loss_fn=None, labels=None, h=1e-5, seed=12345):
    """Directional-derivative check of a whole network along one random direction over its input
    and every parameter.  Returns a GradError with the relative error of the two scalars.

    L is ``loss_fn(module(x), labels)`` when given, else sum(module(x) * dy) for a random dy.
    """
    rng = np.random.default_rng(seed)
    y = module(x)
    xp = get_array_module(y)
    dy = None if loss_fn is not None else xp.asarray(rng.standard_normal(y.shape))
    module.zero_grad()
    if loss_fn is not None:
        loss_fn(y, labels)
        dx = module.backward(loss_fn.backward())
    else:
        dx = module.backward(dy)
    tensors = [("input", x, dx)] + [(n, p.data, p.grad) for n, p in module.named_parameters()]
    directions = [xp.asarray(rng.standard_normal(t.shape)) for _, t, _ in tensors]
    analytic = sum(float((g * v).sum()) for (_, _, g), v in zip(tensors, directions) if g is not None)

    def loss_at(step):
        for (_, t, _), v in zip(tensors, directions):
            t += step * v
        out = module(x)
        value = float(loss_fn(out, labels)) if loss_fn is not None else float((out * dy).sum())
        for (_, t, _), v in zip(tensors, directions):
            t -= step * v
        return value

    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    for m in module.modules():
        object.__setattr__(m, "_cache", None)
    return rel_error(np.array([analytic]), np.array([numeric]), "directional derivative")
