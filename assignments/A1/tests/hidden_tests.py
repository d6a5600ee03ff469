"""A1 hidden tests: kept by the instructor, run at grading.

Students see a failing case described by its parameters and the diagnosis only (never this code).
"""
import numpy as np

from tinyresnet import functional as F
from tinyresnet.assign.harness import Suite

suite = Suite()


def normal(*shape, dtype=np.float64):
    return lambda rng: rng.standard_normal(shape).astype(dtype)


def distinct(*shape, offset=-3.0, dtype=np.float64):
    return lambda rng: (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 + offset).astype(dtype)


CONV_CASES = [
    dict(N=2, C=3, H=7, W=5, filters=4, k=3, stride=2, padding=0),
    dict(N=3, C=4, H=4, W=4, filters=5, k=1, stride=1, padding=0),
    dict(N=1, C=2, H=8, W=6, filters=3, k=3, stride=3, padding=2),
    dict(N=2, C=3, H=5, W=6, filters=2, k=3, stride=1, padding=1, bias=False),
    dict(N=4, C=1, H=6, W=6, filters=2, k=5, stride=1, padding=2),
    dict(N=2, C=3, H=6, W=5, filters=4, k=3, stride=2, padding=1, dtype="float32"),
]


def conv_inputs(t, N, C, H, W, filters, k, bias, dtype):
    x = t.input("x", normal(N, C, H, W, dtype=dtype))
    w = t.input("w", normal(filters, C, k, k, dtype=dtype))
    b = t.input("b", normal(filters, dtype=dtype)) if bias else None
    return x, w, b


@suite.test("conv_forward", cases=CONV_CASES)
def conv_forward_hidden(t, N, C, H, W, filters, k, stride, padding, bias=True, dtype="float64"):
    x, w, b = conv_inputs(t, N, C, H, W, filters, k, bias, dtype)
    y, _ = F.conv2d_forward(x, w, b, stride=stride, padding=padding)
    alternatives = {}
    if bias:
        alternatives["bias_ignored"] = lambda: F.conv2d_forward(x, w, None, stride, padding)[0]
    if k > 1:
        alternatives["conv_forward_kernel_flipped"] = lambda: F.conv2d_forward(
            x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, stride, padding)[0]
    if padding:
        alternatives["conv_forward_padding_ignored"] = lambda: F.conv2d_forward(
            x, w, b, stride, 0)[0]
    if stride > 1:
        alternatives["conv_forward_stride_ignored"] = lambda: F.conv2d_forward(
            x, w, b, 1, padding)[0]
    t.expect("y", y, kind="float32" if dtype == "float32" else "output",
             check_dtype=True, alternatives=alternatives)


@suite.test("conv_backward", cases=CONV_CASES)
def conv_backward_hidden(t, N, C, H, W, filters, k, stride, padding, bias=True, dtype="float64"):
    x, w, b = conv_inputs(t, N, C, H, W, filters, k, bias, dtype)
    y, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding)
    dy = t.input("dy", normal(*np.shape(y), dtype=dtype))
    dx, dw, db = F.conv2d_backward(dy, cache)
    kind = "float32" if dtype == "float32" else "gradient"

    def unflipped():
        _, flipped_cache = F.conv2d_forward(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b,
                                            stride, padding)
        return F.conv2d_backward(dy, flipped_cache)[0]

    def padded_input_gradient():
        pads = ((0, 0), (0, 0), (padding, padding), (padding, padding))
        return F.conv2d_backward(dy, F.conv2d_forward(np.pad(x, pads), w, b, stride, 0)[1])[0]

    alternatives = {"kernel_not_flipped": unflipped} if k > 1 else {}
    if padding:
        alternatives["conv_padding_not_cropped"] = padded_input_gradient
    t.expect("dx", dx, kind=kind, hints={"N": N}, alternatives=alternatives, check_dtype=True)
    t.expect("dw", dw, kind=kind, hints={"N": N}, check_dtype=True)
    if bias:
        t.expect("db", db, kind=kind, hints={"N": N}, check_dtype=True,
                 alternatives={"conv_db_wrong_axes": lambda: dy.sum(axis=(1, 2, 3))})
    else:
        t.check(db is None, "db must be None when the forward had no bias")


POOL_CASES = [
    dict(N=2, C=2, H=7, W=5, k=2, stride=2),
    dict(N=1, C=3, H=5, W=5, k=3, stride=1),
    dict(N=2, C=2, H=6, W=6, k=3, stride=2, padding=1, all_negative=True),
    dict(N=2, C=1, H=4, W=6, k=2, stride=1),
    dict(N=1, C=2, H=6, W=6, k=2, stride=2, dtype="float32"),
]


def pool_input(N, C, H, W, all_negative, dtype):
    return distinct(N, C, H, W, offset=-20.0 if all_negative else -3.0, dtype=dtype)


@suite.test("maxpool_forward", cases=POOL_CASES)
def maxpool_forward_hidden(t, N, C, H, W, k, stride, padding=0, all_negative=False,
                           dtype="float64"):
    x = t.input("x", pool_input(N, C, H, W, all_negative, dtype))
    y, _ = F.maxpool2d_forward(x, k, stride, padding)
    t.expect("y", y, kind="float32" if dtype == "float32" else "output", check_dtype=True,
             alternatives={"maxpool_zero_padding": lambda: F.maxpool2d_forward(
                 np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))), k, stride)[0]})


def routed(x, dy, k, stride, padding, window_stride, accumulate):
    """Each output's gradient sent to its window's first maximum (the reference's rule), with two
    known bugs to choose: windows placed every ``window_stride`` pixels instead of every
    ``stride``, and ``accumulate=False`` (an overlapping window overwrites, = instead of +=)."""
    pads = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    xp = np.pad(x.astype(np.float64), pads, constant_values=-np.inf)
    dx = np.zeros(xp.shape)
    N, C, Ho, Wo = dy.shape
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            a, b = np.unravel_index(window.reshape(N, C, -1).argmax(axis=2), (k, k))
            n, c = np.indices((N, C))
            rows, cols = i * window_stride + a, j * window_stride + b
            if accumulate:
                np.add.at(dx, (n, c, rows, cols), dy[:, :, i, j])
            else:
                dx[n, c, rows, cols] = dy[:, :, i, j]
    return dx[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]


@suite.test("maxpool_backward", cases=POOL_CASES + [
    dict(N=2, C=2, H=5, W=5, k=3, stride=1, ties=True),
    dict(N=1, C=2, H=6, W=4, k=2, stride=2, ties=True)])
def maxpool_backward_hidden(t, N, C, H, W, k, stride, padding=0, all_negative=False,
                            dtype="float64", ties=False):
    if ties:
        x = t.input("x", lambda rng: rng.integers(0, 3, (N, C, H, W)).astype(float))
    else:
        x = t.input("x", pool_input(N, C, H, W, all_negative, dtype))
    y, cache = F.maxpool2d_forward(x, k, stride, padding)
    dy = t.input("dy", normal(*np.shape(y), dtype=dtype))
    dx = F.maxpool2d_backward(dy, cache)
    alternatives = {"maxpool_spread": lambda: F.avgpool2d_backward(
        dy, F.avgpool2d_forward(x, k, stride, padding)[1])}
    if stride > 1:
        alternatives["maxpool_window_offset"] = lambda: routed(x, dy, k, stride, padding, 1, True)
    if stride < k:
        alternatives["maxpool_overwrite"] = lambda: routed(x, dy, k, stride, padding, stride, False)
    t.expect("dx", dx, kind="float32" if dtype == "float32" else "gradient", check_dtype=True,
             alternatives=alternatives)


def with_zeros(shape, dtype="float64"):
    def make(rng):
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.3] = 0.0
        return x.astype(dtype)
    return make


RELU_CASES = [dict(N=7), dict(N=3, D=2, ndim=3), dict(N=2, D=9, dtype="float32")]


def relu_shape(N, D, ndim):
    return (N,) if D is None else (N,) + (D,) * (ndim - 1)


@suite.test("relu_forward", cases=RELU_CASES)
def relu_forward_hidden(t, N, D=None, ndim=2, dtype="float64"):
    x = t.input("x", with_zeros(relu_shape(N, D, ndim), dtype))
    y, _ = F.relu_forward(x)
    t.expect("y", y, check_dtype=True)


@suite.test("relu_backward", cases=RELU_CASES)
def relu_backward_hidden(t, N, D=None, ndim=2, dtype="float64"):
    shape = relu_shape(N, D, ndim)
    x = t.input("x", with_zeros(shape, dtype))
    _, cache = F.relu_forward(x)
    dy = t.input("dy", normal(*shape, dtype=dtype))
    t.expect("dx", F.relu_backward(dy, cache), kind="gradient", check_dtype=True,
             masks={"relu_at_zero": x == 0},
             alternatives={"relu_mask_from_dy": lambda: dy * (dy > 0),
                           "relu_mask_from_output": lambda: dy.copy()})


LINEAR_CASES = [
    dict(N=1, D=6, out=2),
    dict(N=5, D=3, out=3),
    dict(N=6, D=7, out=4, bias=False),
    dict(N=4, D=3, out=5, dtype="float32"),
]


def linear_inputs(t, N, D, out, bias, dtype):
    x = t.input("x", normal(N, D, dtype=dtype))
    w = t.input("w", normal(out, D, dtype=dtype))
    b = t.input("b", normal(out, dtype=dtype)) if bias else None
    return x, w, b


@suite.test("linear_forward", cases=LINEAR_CASES)
def linear_forward_hidden(t, N, D, out, bias=True, dtype="float64"):
    x, w, b = linear_inputs(t, N, D, out, bias, dtype)
    y, _ = F.linear_forward(x, w, b)
    t.expect("y", y, kind="float32" if dtype == "float32" else "output", check_dtype=True,
             alternatives={"bias_ignored": lambda: x @ w.T} if bias else {})


@suite.test("linear_backward", cases=LINEAR_CASES)
def linear_backward_hidden(t, N, D, out, bias=True, dtype="float64"):
    x, w, b = linear_inputs(t, N, D, out, bias, dtype)
    _, cache = F.linear_forward(x, w, b)
    dy = t.input("dy", normal(N, out, dtype=dtype))
    dx, dw, db = F.linear_backward(dy, cache)
    kind = "float32" if dtype == "float32" else "gradient"
    t.expect("dx", dx, kind=kind, hints={"N": N}, check_dtype=True)
    t.expect("dw", dw, kind=kind, hints={"N": N}, check_dtype=True)
    if bias:
        t.expect("db", db, kind=kind, hints={"N": N}, check_dtype=True)
    else:
        t.check(db is None, "db must be None when the forward had no bias")


CE_CASES = [
    dict(N=1, K=2),
    dict(N=8, K=10, scale=1000.0, about="very large logits"),
    dict(N=6, K=3, dloss=2.5),
    dict(N=4, K=5, dtype="float32"),
]


def ce_inputs(t, N, K, scale, dtype):
    z = t.input("logits", lambda rng: (scale * rng.standard_normal((N, K))).astype(dtype))
    y = t.input("labels", lambda rng: rng.integers(0, K, N))
    return z, y


@suite.test("softmax_ce_forward", cases=CE_CASES)
def softmax_ce_forward_hidden(t, N, K, scale=1.0, dloss=1.0, about="", dtype="float64"):
    z, y = ce_inputs(t, N, K, scale, dtype)
    kind = "float32" if dtype == "float32" else "output"
    t.expect("log_softmax", F.log_softmax(z), kind=kind, nonfinite="softmax_overflow",
             check_dtype=True)
    loss, _ = F.softmax_cross_entropy_forward(z, y)
    t.expect("loss", loss, kind=kind, hints={"N": N}, nonfinite="softmax_overflow",
             check_dtype=True)


@suite.test("softmax_ce_backward", cases=CE_CASES)
def softmax_ce_backward_hidden(t, N, K, scale=1.0, dloss=1.0, about="", dtype="float64"):
    z, y = ce_inputs(t, N, K, scale, dtype)
    _, cache = F.softmax_cross_entropy_forward(z, y)
    dz = F.softmax_cross_entropy_backward(dloss, cache)
    t.expect("dlogits", dz, kind="float32" if dtype == "float32" else "gradient",
             hints={"N": N, "upstream": dloss}, nonfinite="softmax_overflow", check_dtype=True,
             alternatives={"softmax_no_onehot": lambda: dloss * np.exp(F.log_softmax(z)) / N})
