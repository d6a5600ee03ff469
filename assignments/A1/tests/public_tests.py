"""A1 public tests: run them with ``python -m tinyresnet.assign check A1``.

Each test feeds your functions inputs stored in ``reference_public.npz`` and compares what they
return with the reference solution's answers stored beside them.  When a result is wrong the
checker names the tensor, the relative error, the worst element, and the bug it looks like.
"""
import numpy as np

from tinyresnet import functional as F
from tinyresnet.assign.harness import Suite

suite = Suite()


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def distinct(*shape):
    """Values that are all different: max pooling has no ties to break."""
    return lambda rng: rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3.0


# ---- 2. convolution -----------------------------------------------------------------------------
CONV_CASES = [
    dict(N=2, C=3, H=5, W=5, filters=4, k=3, stride=1, padding=1),
    dict(N=2, C=2, H=6, W=6, filters=3, k=2, stride=2, padding=0),
]


def conv_inputs(t, N, C, H, W, filters, k):
    x = t.input("x", normal(N, C, H, W))
    w = t.input("w", normal(filters, C, k, k))
    b = t.input("b", normal(filters))
    return x, w, b


@suite.test("conv_forward", cases=CONV_CASES)
def conv_forward(t, N, C, H, W, filters, k, stride, padding):
    x, w, b = conv_inputs(t, N, C, H, W, filters, k)
    y, _ = F.conv2d_forward(x, w, b, stride=stride, padding=padding)
    t.expect("y", y, alternatives={
        "bias_ignored": lambda: F.conv2d_forward(x, w, None, stride, padding)[0]})


@suite.test("conv_backward", cases=CONV_CASES)
def conv_backward(t, N, C, H, W, filters, k, stride, padding):
    x, w, b = conv_inputs(t, N, C, H, W, filters, k)
    y, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding)
    dy = t.input("dy", normal(*np.shape(y)))
    dx, dw, db = F.conv2d_backward(dy, cache)

    def unflipped():
        # the gradient formula applied to the kernel rotated by 180 degrees
        _, flipped_cache = F.conv2d_forward(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b,
                                            stride, padding)
        return F.conv2d_backward(dy, flipped_cache)[0]

    def uncropped():
        # the gradient with respect to the padded input
        pads = ((0, 0), (0, 0), (padding, padding), (padding, padding))
        return F.conv2d_backward(dy, F.conv2d_forward(np.pad(x, pads), w, b, stride, 0)[1])[0]

    alternatives = {"kernel_not_flipped": unflipped}
    if padding:
        alternatives["conv_padding_not_cropped"] = uncropped
    t.expect("dx", dx, kind="gradient", hints={"N": N}, alternatives=alternatives)
    t.expect("dw", dw, kind="gradient", hints={"N": N})
    t.expect("db", db, kind="gradient", hints={"N": N},
             alternatives={"conv_db_wrong_axes": lambda: dy.sum(axis=(1, 2, 3))})


# ---- 3. max pooling -----------------------------------------------------------------------------
POOL_CASES = [
    dict(N=2, C=3, H=4, W=4, k=2, stride=2),
    dict(N=1, C=2, H=5, W=5, k=3, stride=2, padding=1),
]


def tie_mask(x, k, stride, padding):
    """Input elements that lie in a window whose maximum is attained more than once."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf)
    Ho, Wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    mask = np.zeros(xp.shape, dtype=bool)
    for i in range(Ho):
        for j in range(Wo):
            rows, cols = slice(i * stride, i * stride + k), slice(j * stride, j * stride + k)
            window = xp[:, :, rows, cols]
            tied = (window == window.max(axis=(2, 3), keepdims=True)).sum(axis=(2, 3)) > 1
            mask[:, :, rows, cols] |= tied[:, :, None, None]
    return mask[:, :, padding:padding + H, padding:padding + W]


def every_maximum_dx(x, dy, k, stride, padding):
    """The wrong rule that sends a window's gradient to each of its tied maxima."""
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf)
    dx = np.zeros(xp.shape)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            rows, cols = slice(i * stride, i * stride + k), slice(j * stride, j * stride + k)
            window = xp[:, :, rows, cols]
            at_max = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, rows, cols] += at_max * dy[:, :, i, j][:, :, None, None]
    return dx[:, :, padding:padding + H, padding:padding + W]


@suite.test("maxpool_forward", cases=POOL_CASES)
def maxpool_forward(t, N, C, H, W, k, stride, padding=0):
    x = t.input("x", distinct(N, C, H, W))
    y, _ = F.maxpool2d_forward(x, k, stride, padding)
    t.expect("y", y, alternatives={"maxpool_zero_padding": lambda: F.maxpool2d_forward(
        np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))), k, stride)[0]})


@suite.test("maxpool_backward", cases=POOL_CASES + [
    dict(N=2, C=2, H=4, W=4, k=2, stride=2, ties=True)])
def maxpool_backward(t, N, C, H, W, k, stride, padding=0, ties=False):
    make = (lambda rng: rng.integers(0, 3, (N, C, H, W)).astype(float)) if ties else distinct(N, C, H, W)
    x = t.input("x", make)
    y, cache = F.maxpool2d_forward(x, k, stride, padding)
    dy = t.input("dy", normal(*np.shape(y)))
    dx = F.maxpool2d_backward(dy, cache)
    alternatives = {
        "maxpool_spread": lambda: F.avgpool2d_backward(dy, F.avgpool2d_forward(x, k, stride, padding)[1]),
    }
    if ties:
        alternatives["maxpool_all_ties"] = lambda: every_maximum_dx(x, dy, k, stride, padding)
    t.expect("dx", dx, kind="gradient", alternatives=alternatives,
             masks={"pool_ties_only": tie_mask(x, k, stride, padding)})


# ---- 4. ReLU ------------------------------------------------------------------------------------
def with_zeros(*shape):
    """Normal values with a quarter of them exactly 0 (where ReLU's gradient is a convention)."""
    def make(rng):
        x = rng.standard_normal(shape)
        x[rng.random(shape) < 0.25] = 0.0
        return x
    return make


@suite.test("relu_forward", cases=[dict(N=4, D=6), dict(N=2, C=3, H=4, W=4)])
def relu_forward(t, N, D=None, C=None, H=None, W=None):
    shape = (N, D) if D else (N, C, H, W)
    x = t.input("x", with_zeros(*shape))
    y, _ = F.relu_forward(x)
    t.expect("y", y)


@suite.test("relu_backward", cases=[dict(N=4, D=6), dict(N=2, C=3, H=4, W=4)])
def relu_backward(t, N, D=None, C=None, H=None, W=None):
    shape = (N, D) if D else (N, C, H, W)
    x = t.input("x", with_zeros(*shape))
    _, cache = F.relu_forward(x)
    dy = t.input("dy", normal(*shape))
    t.expect("dx", F.relu_backward(dy, cache), kind="gradient", masks={"relu_at_zero": x == 0},
             alternatives={"relu_mask_from_dy": lambda: dy * (dy > 0)})


# ---- 5. linear ----------------------------------------------------------------------------------
LINEAR_CASES = [dict(N=4, D=5, out=3), dict(N=3, D=4, out=4, bias=False)]


@suite.test("linear_forward", cases=LINEAR_CASES)
def linear_forward(t, N, D, out, bias=True):
    x = t.input("x", normal(N, D))
    w = t.input("w", normal(out, D))
    b = t.input("b", normal(out)) if bias else None
    y, _ = F.linear_forward(x, w, b)
    t.expect("y", y, alternatives={"bias_ignored": lambda: x @ w.T} if bias else {})


@suite.test("linear_backward", cases=LINEAR_CASES)
def linear_backward(t, N, D, out, bias=True):
    x = t.input("x", normal(N, D))
    w = t.input("w", normal(out, D))
    b = t.input("b", normal(out)) if bias else None
    _, cache = F.linear_forward(x, w, b)
    dy = t.input("dy", normal(N, out))
    dx, dw, db = F.linear_backward(dy, cache)
    t.expect("dx", dx, kind="gradient", hints={"N": N})
    t.expect("dw", dw, kind="gradient", hints={"N": N})
    if bias:
        t.expect("db", db, kind="gradient", hints={"N": N})
    else:
        t.check(db is None, "db must be None when the forward had no bias")


# ---- 6. softmax cross-entropy -------------------------------------------------------------------
CE_CASES = [dict(N=5, K=4), dict(N=3, K=10)]


@suite.test("softmax_ce_forward", cases=CE_CASES)
def softmax_ce_forward(t, N, K):
    z = t.input("logits", normal(N, K))
    y = t.input("labels", lambda rng: rng.integers(0, K, N))
    t.expect("log_softmax", F.log_softmax(z), nonfinite="softmax_overflow")
    loss, _ = F.softmax_cross_entropy_forward(z, y)
    t.expect("loss", loss, hints={"N": N}, nonfinite="softmax_overflow")


@suite.test("softmax_ce_backward", cases=CE_CASES)
def softmax_ce_backward(t, N, K):
    z = t.input("logits", normal(N, K))
    y = t.input("labels", lambda rng: rng.integers(0, K, N))
    _, cache = F.softmax_cross_entropy_forward(z, y)
    dz = F.softmax_cross_entropy_backward(1.0, cache)
    t.expect("dlogits", dz, kind="gradient", hints={"N": N}, alternatives={
        "softmax_no_onehot": lambda: np.exp(F.log_softmax(z)) / N})
