"""A4 hidden tests: kept by the instructor, run at grading (students see parameters and
diagnoses only).

Each case runs several steps of the student's optimizer on two parameters with a fixed sequence of
gradients and compares the parameters after every step with the reference's.  The reference is
checked when the bundle is built: against ``torch.optim.SGD`` / ``torch.optim.Adam`` when torch is
installed, and always against the update rules written out below (dampening 0, no Nesterov, L2
weight decay added to the gradient; Adam with bias correction), so grading never needs torch.
The same formulas, each with one known bug put in, give the diagnosis.
"""
import numpy as np

from tinyresnet import nn, optim
from tinyresnet.assign.harness import Suite

suite = Suite()
SHAPES = [(3, 4), (5,)]


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def run_steps(t, make, steps):
    """(start values, gradient sequences, values after each step) of every parameter."""
    start = [t.input(f"theta0_{i}", normal(*shape)) for i, shape in enumerate(SHAPES)]
    grads = [t.input(f"grads_{i}", normal(steps, *shape)) for i, shape in enumerate(SHAPES)]
    params = [nn.Parameter(s.copy()) for s in start]
    optimizer = make(params)
    history = [[] for _ in params]
    for k in range(steps):
        for p, g in zip(params, grads):
            p.grad = g[k].copy()
        optimizer.step()
        for p, h in zip(params, history):
            h.append(np.array(p.data, copy=True))
    return start, grads, [np.stack(h) for h in history]


def sgd_formula(theta, grads, lr, momentum, weight_decay, bug=None):
    """torch.optim.SGD (dampening 0, nesterov False), or one known bug of it."""
    theta, buf, out = theta.copy(), None, []
    for g in grads:
        if bug not in ("sgd_weight_decay_ignored", "sgd_weight_decay_after_momentum"):
            g = g + weight_decay * theta                         # g <- g + lambda theta
        step = g
        if momentum and bug != "sgd_no_momentum":
            if bug == "sgd_dampened":                            # b = mu b + (1 - mu) g, b_0 = 0
                buf = (1 - momentum) * g if buf is None else momentum * buf + (1 - momentum) * g
            else:                                                # b_1 = g_1, b = mu b + g
                buf = g.copy() if buf is None else momentum * buf + g
            step = buf
        if bug == "sgd_weight_decay_after_momentum":
            step = step + weight_decay * theta
        theta = theta - lr * step                                # theta <- theta - lr b
        out.append(theta.copy())
    return np.stack(out)


def adam_formula(theta, grads, lr, beta1, beta2, eps, weight_decay, bug=None):
    """torch.optim.Adam (L2 weight decay, bias correction), or one known bug of it."""
    theta, m, v, out = theta.copy(), 0.0, 0.0, []
    for step, g in enumerate(grads, start=1):
        if weight_decay and bug == "adam_decoupled_weight_decay":
            theta = theta * (1 - lr * weight_decay)              # AdamW's rule
        elif weight_decay:
            g = g + weight_decay * theta                         # g <- g + lambda theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        t = 1 if bug == "adam_step_not_counted" else step
        if bug == "adam_no_bias_correction":
            m_hat, v_hat = m, v
        else:
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        denom = np.sqrt(v_hat + eps) if bug == "adam_eps_inside_sqrt" else np.sqrt(v_hat) + eps
        theta = theta - lr * m_hat / denom
        out.append(theta.copy())
    return np.stack(out)


def torch_steps(start, grads, make):
    """The same steps with a torch optimizer, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    params = [torch.nn.Parameter(torch.from_numpy(s.copy())) for s in start]
    optimizer, history = make(params), [[] for _ in params]
    for k in range(len(grads[0])):
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g[k].copy())
        optimizer.step()
        for p, h in zip(params, history):
            h.append(p.detach().numpy().copy())
    return [np.stack(h) for h in history]


def check_reference(t, name, ours, formulas, torch_values):
    """At build time: the reference must follow the written-out rule (and torch, if present)."""
    if not t.recording:
        return
    for i, value in enumerate(ours):
        for source, other in (("the formula", formulas[i]),
                              ("torch.optim", None if torch_values is None else torch_values[i])):
            if other is not None and not np.allclose(value, other, rtol=1e-10, atol=1e-12):
                raise AssertionError(f"{name}: the reference differs from {source} "
                                     f"(max {np.abs(value - other).max():.2e})")


SGD_CASES = [
    dict(lr=0.1, momentum=0.9, weight_decay=0.0, steps=4),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, steps=5),
    dict(lr=0.2, momentum=0.0, weight_decay=0.1, steps=3),
    dict(lr=0.1, momentum=0.5, weight_decay=0.001, steps=4),
]
SGD_BUGS = ["sgd_no_momentum", "sgd_dampened", "sgd_weight_decay_ignored",
            "sgd_weight_decay_after_momentum"]


@suite.test("sgd", cases=SGD_CASES)
def sgd_hidden(t, lr, momentum, weight_decay, steps):
    start, grads, ours = run_steps(
        t, lambda ps: optim.SGD(ps, lr=lr, momentum=momentum, weight_decay=weight_decay), steps)
    args = (lr, momentum, weight_decay)
    if t.recording:
        import importlib
        formulas = [sgd_formula(s, g, *args) for s, g in zip(start, grads)]
        theirs = torch_steps(start, grads, lambda ps: importlib.import_module("torch").optim.SGD(
            ps, lr=lr, momentum=momentum, weight_decay=weight_decay))
        check_reference(t, "SGD", ours, formulas, theirs)
    for i, value in enumerate(ours):
        t.expect(f"parameter {i} after each step", value, alternatives={
            bug: (lambda bug=bug, i=i: sgd_formula(start[i], grads[i], *args, bug=bug))
            for bug in SGD_BUGS})


ADAM_CASES = [
    dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, steps=4),
    dict(lr=0.001, beta1=0.8, beta2=0.99, eps=1e-3, weight_decay=0.0, steps=5),
    dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, steps=4),
]
ADAM_BUGS = ["adam_no_bias_correction", "adam_step_not_counted", "adam_eps_inside_sqrt",
             "adam_decoupled_weight_decay"]


@suite.test("adam", cases=ADAM_CASES)
def adam_hidden(t, lr, beta1, beta2, eps, weight_decay, steps):
    start, grads, ours = run_steps(t, lambda ps: optim.Adam(
        ps, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay), steps)
    args = (lr, beta1, beta2, eps, weight_decay)
    if t.recording:
        import importlib
        formulas = [adam_formula(s, g, *args) for s, g in zip(start, grads)]
        theirs = torch_steps(start, grads, lambda ps: importlib.import_module("torch").optim.Adam(
            ps, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay))
        check_reference(t, "Adam", ours, formulas, theirs)
    for i, value in enumerate(ours):
        t.expect(f"parameter {i} after each step", value, alternatives={
            bug: (lambda bug=bug, i=i: adam_formula(start[i], grads[i], *args, bug=bug))
            for bug in ADAM_BUGS})
