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
Each tensor's part of v is scaled to that tensor's own size (its RMS), so h is a relative step:
every weight, bias and input moves by h times its tensor's typical value.  A unit-variance v would
move a weight of size 0.02 by fifty times more than a BN scale of size 1, which forces tiny steps
that drown in round-off.

Errors are relative: norm-wise ||a - n|| / max(||a||, ||n||), and element-wise
|a - n| / max(|a| + |n|, floor) with the worst element reported (the floor, 1e-6 times the largest
|n|, keeps elements that are pure round-off from dominating).  A tensor passes when its norm-wise
error is below ``tol``, or when every |a - n| is below ``atol``: a gradient that is exactly zero
in theory (the bias of a conv followed by batch norm) is all round-off, and no relative measure
of round-off means anything.  ``check_op`` and ``check_module`` set ``atol`` from the round-off of
the difference quotient itself: each L is a sum whose terms add up to S = sum |f(x) * dy|, so it
carries an error of about eps * S, and the quotient one of eps * S / h; ``atol`` is 100 times that
(at least 1e-9), so a zero gradient passes under every BLAS kernel's rounding and a wrong one of
any size that differences can resolve does not.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = [
    "numerical_gradient", "rel_error", "GradError", "GradCheckReport",
    "check_op", "check_module", "check_direction", "direction_scale", "DirectionalError",
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


def _roundoff_atol(y, dy, h):
    """100 x the round-off of a central difference of L = sum(y * dy): eps * sum|y * dy| / h."""
    terms = np.abs(np.asarray(to_numpy(y), dtype=np.float64) * to_numpy(dy)).sum()
    return max(1e-9, 100 * np.finfo(np.float64).eps * float(terms) / h)


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
    report = GradCheckReport(tol=tol, atol=_roundoff_atol(y, dy, h))
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
    report = GradCheckReport(tol=tol, atol=_roundoff_atol(y, dy, h))

    def f(_):
        return module(x)

    if inputs:
        report.errors.append(rel_error(dx, numerical_gradient(f, x, dy, h), "input"))
    for name, p in module.named_parameters():
        report.errors.append(rel_error(p.grad, numerical_gradient(f, p.data, dy, h), name))
    module._clear_caches()  # the numerical passes' forwards have no backward to come
    return report


# check_direction's relative steps, largest first, a factor 4 apart: from where few networks
# have a kink inside the step down to where round-off still stays near 1e-8
STEPS = (1e-5, 2.5e-6, 6.25e-7, 1.5625e-7, 3.90625e-8)


@dataclass
class DirectionalError(GradError):
    """A GradError for the one scalar of ``check_direction``, with how the step was chosen.

    ``step`` is the relative step h whose difference quotient was used; ``tried`` lists
    (h, difference quotient) for every step evaluated, largest first (the round-off probe
    included); ``agreement`` is the relative gap between the chosen quotient and the next
    smaller step's (nan when no pair agreed or one step was given); ``roundoff`` is the relative
    round-off estimated for the chosen quotient; ``scales`` maps each tensor ("input" and every
    parameter name) to the size its part of the direction was given (its RMS, or ``zero_scale``
    for an all-zero tensor).
    """

    step: float = 0.0
    scales: dict = field(default_factory=dict)
    analytic: float = 0.0
    numeric: float = 0.0
    tried: list = field(default_factory=list)
    agreement: float = float("nan")
    roundoff: float = float("nan")

    def __str__(self):
        sizes = sorted(self.scales.values())
        spread = f", tensor sizes {sizes[0]:.2g} to {sizes[-1]:.2g}" if sizes else ""
        if len(self.tried) == 1:
            how = ", as given"
        elif not math.isnan(self.agreement):
            how = (f", of {len(self.tried)} tried the one that agrees best with the next smaller, "
                   f"to {self.agreement:.1e} (round-off about {self.roundoff:.1e})")
        else:
            how = (f", the smallest of {len(self.tried)} tried: no two agreed within round-off "
                   f"(about {self.roundoff:.1e})")
        return (f"{self.name}: rel. error {self.norm_error:.2e} (analytic {self.analytic:.10g} vs "
                f"numeric {self.numeric:.10g}; step {self.step:g} of each tensor's RMS{how}"
                f"{spread})")


def direction_scale(t, zero_scale=1.0):
    """The size of tensor ``t`` (its root mean square), or ``zero_scale`` when it is all zeros.

    A freshly initialised BN shift (beta = 0) has no size of its own; it shifts values that BN
    has normalised to unit variance, so 1 is its natural scale.
    """
    rms = float(np.sqrt(np.mean(np.square(to_numpy(t), dtype=np.float64)))) if t.size else 0.0
    return rms if rms > 0 else zero_scale


def _choose_step(quotient, steps, noise_step, safety=10.0, exact=1e-10):
    """Walk down ``steps``; return (h, quotient at h, relative gap to the next step's, round-off
    estimate, tried).

    Without a kink inside the step, central differences at neighbouring steps differ by
    round-off only; a ReLU input crossing zero inside the larger step makes them differ by more.
    Round-off is measured, not assumed: the quotient at ``noise_step`` (far below any kink,
    far into round-off) differs from the smallest step's by about e / noise_step, where e is the
    round-off of one loss value, so a quotient at step h carries about e / h.  Of the steps whose
    quotient agrees with the next smaller step's within ``safety`` times their round-off, the
    one that agrees best is kept (the truncation error, of order h^2, is what the gap then shows;
    a gap below ``exact`` ends the walk); failing any, the smallest step.  Only numerical values
    decide: the analytic gradient plays no part, so a wrong backward cannot pick a flattering
    step.
    """
    values = {}

    def q(h):
        if h not in values:
            values[h] = quotient(h)
        return values[h]

    smallest = q(steps[-1])
    noise = max(abs(q(noise_step) - smallest) * noise_step, 1e-16 * abs(smallest) * noise_step)
    size = abs(smallest) if smallest != 0 else 1.0
    h, gap = steps[-1], None
    for big, small in zip(steps, steps[1:]):
        difference = abs(q(big) - q(small))
        within_round_off = difference <= safety * noise * (1 / big + 1 / small)
        if within_round_off and (gap is None or difference / size < gap):
            h, gap = big, difference / size
            if gap <= exact:
                break
    gap = float("nan") if gap is None else gap
    tried = sorted(values.items(), reverse=True)
    return h, q(h), gap, noise / h / size, tried


def check_direction(module, x, loss_fn=None, labels=None, h=None, seed=12345, zero_scale=1.0,
                    steps=STEPS, noise_step=1e-10):
    """Directional-derivative check of a whole network along one random direction over its input
    and every parameter.  Returns a DirectionalError (a GradError) with the relative error of the
    two scalars, the step, the steps tried and the per-tensor scales used.

    L is ``loss_fn(module(x), labels)`` when given, else sum(module(x) * dy) for a random dy.
    The direction's part for tensor t is r_t * s_t with r_t standard normal and s_t the RMS of t
    (``zero_scale`` for an all-zero t), so a step h is relative: each tensor moves by h times its
    own size.  A central difference in a ReLU network errs two ways: a large step carries ReLU
    inputs across zero (a kink inside the step breaks the difference quotient), a small one leaves
    round-off of 1e-16 / h to 1e-14 / h relative.  With ``h=None`` the step is chosen from
    ``steps``: of those whose quotient agrees with the next smaller step's within the round-off
    measured at ``noise_step``, the one that agrees best (see ``_choose_step``); a given ``h``
    is used alone.
    docs/guides/gradcheck.md has the errors measured on every network the tests use.
    Parameters and input are restored (to the round-off of +h v - h v).
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
    scales = {name: direction_scale(t, zero_scale) for name, t, _ in tensors}
    directions = [xp.asarray(rng.standard_normal(t.shape) * scales[name]) for name, t, _ in tensors]
    analytic = sum(float((g * v).sum()) for (_, _, g), v in zip(tensors, directions) if g is not None)

    def loss_at(step):
        for (_, t, _), v in zip(tensors, directions):
            t += step * v
        out = module(x)
        value = float(loss_fn(out, labels)) if loss_fn is not None else float((out * dy).sum())
        for (_, t, _), v in zip(tensors, directions):
            t -= step * v
        return value

    def quotient(step):
        return (loss_at(step) - loss_at(-step)) / (2 * step)

    if h is None:
        h, numeric, agreement, roundoff, tried = _choose_step(quotient, steps, noise_step)
    else:
        numeric = quotient(h)
        agreement, roundoff, tried = float("nan"), float("nan"), [(h, numeric)]
    module._clear_caches()
    error = rel_error(np.array([analytic]), np.array([numeric]), "directional derivative")
    return DirectionalError(**vars(error), step=h, scales=scales, analytic=analytic,
                            numeric=numeric, tried=tried, agreement=agreement,
                            roundoff=roundoff)
