"""Known-wrong implementations for the mutation suite: what students get wrong, written as code.

Each mutation is a snippet appended to one module of the reference solution; it rebinds a
function (or method) to a wrong version, usually by wrapping the reference one, so the mutation
keeps meaning the same bug however the reference is optimised later.  ``part`` must lose points,
``signature`` (an id of ``diagnosis.SIGNATURES`` or a ratio/shape tag) must be the diagnosis of at
least one failing case of that part, ``also`` lists the parts that may lose points as well
(those that run the mutated code too), and ``message`` is a phrase the feedback must contain.

``DEFAULT`` names one mutation per kind of bug, graded by the default test run; ``grade_mutations``
grades a list of them (the tests, and ``scripts/mutation_table.py`` which writes the table in
docs/assignments-mutations.md).
"""
from dataclasses import dataclass

CONV = "tinyresnet/functional/conv.py"
POOL = "tinyresnet/functional/pool.py"
RELU = "tinyresnet/functional/activation.py"
LINEAR = "tinyresnet/functional/linear.py"
LOSS = "tinyresnet/functional/loss.py"
NORM = "tinyresnet/functional/norm.py"
BLOCK = "tinyresnet/models/block.py"
SHORTCUT = "tinyresnet/models/shortcut.py"
FEATURES = "tinyresnet/models/features.py"
CIFAR = "tinyresnet/models/cifar.py"
SGD = "tinyresnet/optim/sgd.py"
ADAM = "tinyresnet/optim/adam.py"


@dataclass(frozen=True)
class Mutation:
    id: str
    assignment: str
    file: str
    code: str
    part: str
    signature: str = None
    also: tuple = ()
    message: str = ""


def _wrap_conv_backward(body):
    return f"""
import numpy as _np
_ref_conv2d_forward, _ref_conv2d_backward = conv2d_forward, conv2d_backward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    y, cache = _ref_conv2d_forward(x, w, b, stride, padding, dilation)
    return y, (cache, x, w, b, stride, padding, dilation)


def conv2d_backward(dy, packed):
    cache, x, w, b, stride, padding, dilation = packed
    dx, dw, db = _ref_conv2d_backward(dy, cache)
{body}
    return dx, dw, db
"""


def _wrap_pool_backward(body):
    return f"""
import numpy as _np
_ref_maxpool2d_forward, _ref_maxpool2d_backward = maxpool2d_forward, maxpool2d_backward


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    y, cache = _ref_maxpool2d_forward(x, kernel_size, stride, padding, dilation)
    return y, (cache, x, kernel_size, kernel_size if stride is None else stride, padding)


def maxpool2d_backward(dy, packed):
    cache, x, k, s, p = packed
{body}
"""


_EVERY_MAX = """
    # the gradient goes to every element equal to its window's maximum ({which})
    xp = _np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-_np.inf)
    dx = _np.zeros(xp.shape, dtype=dy.dtype)
    for i in range(dy.shape[2]):
        for j in range(dy.shape[3]):
            window = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            hit = window == window.max(axis=(2, 3), keepdims=True)
            if {last_only}:
                flat = hit.reshape(hit.shape[0], hit.shape[1], -1)
                last = flat.shape[2] - 1 - _np.argmax(flat[:, :, ::-1], axis=2)
                hit = _np.zeros_like(flat)
                _np.put_along_axis(hit, last[:, :, None], True, axis=2)
                hit = hit.reshape(window.shape)
            dx[:, :, i * s:i * s + k, j * s:j * s + k] += hit * dy[:, :, i, j][:, :, None, None]
    return dx[:, :, p:p + x.shape[2], p:p + x.shape[3]]
"""

_BN_WRAP = """
import numpy as _np
_ref_batchnorm2d_forward, _ref_batchnorm2d_backward = batchnorm2d_forward, batchnorm2d_backward
"""

A1 = [
    Mutation("conv_dx_half", "A1", CONV, _wrap_conv_backward("    dx = 0.5 * dx"),
             "conv_backward", "ratio:1/2", message="a missing factor 2"),
    Mutation("conv_dx_negated", "A1", CONV, _wrap_conv_backward("    dx = -dx"),
             "conv_backward", "ratio:-1", message="opposite sign"),
    Mutation("conv_dw_batch_mean", "A1", CONV, _wrap_conv_backward("    dw = dw / dy.shape[0]"),
             "conv_backward", "ratio:1/N", message="the batch size"),
    Mutation("conv_db_doubled", "A1", CONV,
             _wrap_conv_backward("    db = None if db is None else 2 * db"),
             "conv_backward", "ratio:2", message="a factor 2 too many"),
    Mutation("conv_kernel_not_flipped", "A1", CONV, _wrap_conv_backward(
        "    _, flipped = _ref_conv2d_forward(x, _np.ascontiguousarray(w[:, :, ::-1, ::-1]), b,\n"
        "                                     stride, padding, dilation)\n"
        "    dx = _ref_conv2d_backward(dy, flipped)[0]"),
             "conv_backward", "kernel_not_flipped", message="NOT rotated by 180 degrees"),
    Mutation("conv_dw_transposed", "A1", CONV,
             _wrap_conv_backward("    dw = _np.ascontiguousarray(dw.transpose(1, 0, 2, 3))"),
             "conv_backward", "transpose", message="transpose is missing"),
    Mutation("conv_bias_ignored", "A1", CONV, """
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    y, cache = _ref_conv2d_forward(x, w, b, stride, padding, dilation)
    if b is not None:
        y = y - b[None, :, None, None]
    return y, cache
""", "conv_forward", "bias_ignored", message="without the bias"),
    Mutation("conv_float32_upcast", "A1", CONV, """
import numpy as _np
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    y, cache = _ref_conv2d_forward(x, w, b, stride, padding, dilation)
    return y * _np.float64(1.0), cache
""", "conv_forward", "dtype", message="float32 in gives float32 out"),
    Mutation("maxpool_gradient_spread", "A1", POOL, _wrap_pool_backward(
        "    return avgpool2d_backward(dy, avgpool2d_forward(x, k, s, p)[1])"),
             "maxpool_backward", "maxpool_spread", message="average pooling's rule"),
    Mutation("maxpool_every_tied_maximum", "A1", POOL,
             _wrap_pool_backward(_EVERY_MAX.format(which="all of them", last_only=False)),
             "maxpool_backward", "maxpool_all_ties", message="every maximum"),
    Mutation("maxpool_last_tied_maximum", "A1", POOL,
             _wrap_pool_backward(_EVERY_MAX.format(which="the last one", last_only=True)),
             "maxpool_backward", "pool_ties_only", message="tied"),
    Mutation("maxpool_zero_padding", "A1", POOL, """
import numpy as _np
_ref_maxpool2d_forward = maxpool2d_forward


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1):
    y, cache = _ref_maxpool2d_forward(x, kernel_size, stride, padding, dilation)
    if padding:  # zero padding: a window over the border never goes below 0
        p = padding
        xp = _np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        y = _ref_maxpool2d_forward(xp, kernel_size, stride, 0, dilation)[0]
    return y, cache
""", "maxpool_forward", "maxpool_zero_padding", message="pad with -inf"),
    Mutation("relu_gradient_at_zero", "A1", RELU, """
def relu_forward(x):
    return x * (x > 0), x


def relu_backward(dy, x):
    return dy * (x >= 0)
""", "relu_backward", "relu_at_zero", message="x > 0, not x >= 0"),
    Mutation("relu_mask_from_dy", "A1", RELU, """
def relu_backward(dy, cache):
    return dy * (dy > 0)
""", "relu_backward", "relu_mask_from_dy", message="dy > 0"),
    Mutation("linear_dw_transposed", "A1", LINEAR, """
_ref_linear_backward = linear_backward


def linear_backward(dy, cache):
    dx, dw, db = _ref_linear_backward(dy, cache)
    return dx, dw.T.copy(), db
""", "linear_backward", "transpose", message="transpose"),
    Mutation("linear_db_mean", "A1", LINEAR, """
def linear_backward(dy, cache):
    x, w, has_bias = cache
    return dy @ w, dy.T @ x, (dy.mean(axis=0) if has_bias else None)
""", "linear_backward", "ratio:1/N", message="the batch size"),
    Mutation("linear_bias_ignored", "A1", LINEAR, """
_ref_linear_forward = linear_forward


def linear_forward(x, w, b=None):
    y, cache = _ref_linear_forward(x, w, b)
    return (y if b is None else y - b), cache
""", "linear_forward", "bias_ignored", message="without the bias"),
    Mutation("softmax_onehot_not_subtracted", "A1", LOSS, """
def softmax_cross_entropy_backward(dloss, cache):
    p, targets = cache
    return p * (float(dloss) / p.shape[0])
""", "softmax_ce_backward", "softmax_no_onehot", message="not subtracted"),
    Mutation("softmax_upstream_ignored", "A1", LOSS, """
_ref_softmax_cross_entropy_backward = softmax_cross_entropy_backward


def softmax_cross_entropy_backward(dloss, cache):
    return _ref_softmax_cross_entropy_backward(1.0, cache)
""", "softmax_ce_backward", "ratio:1/upstream", message="incoming gradient"),
    Mutation("cross_entropy_summed", "A1", LOSS, """
_ref_softmax_cross_entropy_forward = softmax_cross_entropy_forward


def softmax_cross_entropy_forward(logits, labels, label_smoothing=0.0):
    loss, cache = _ref_softmax_cross_entropy_forward(logits, labels, label_smoothing)
    return loss * logits.dtype.type(logits.shape[0]), cache
""", "softmax_ce_forward", "ratio:N", message="the batch size"),
    Mutation("log_softmax_unstable", "A1", LOSS, """
import numpy as _np


def log_softmax(z):
    with _np.errstate(over="ignore", invalid="ignore"):
        return z - _np.log(_np.exp(z).sum(axis=1, keepdims=True))
""", "softmax_ce_forward", "softmax_overflow", also=("softmax_ce_backward",),
             message="log-sum-exp"),
]


def _conv_backward(body):
    """A whole conv backward written the im2col way (x kept in the cache), with ``body`` making dx
    from ``dcols``: the place where students get col2im's arguments wrong."""
    return f"""
import numpy as _np
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    y, _ = _ref_conv2d_forward(x, w, b, stride, padding, dilation)
    return y, (x, w, b is not None, stride, padding)


def conv2d_backward(dy, cache):
    x, w, has_bias, stride, padding = cache
    F_, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    cols = im2col(x, (kh, kw), stride, padding)
    dy2 = dy.transpose(1, 0, 2, 3).reshape(F_, -1)
    dw = (dy2 @ cols.T).reshape(w.shape)
    db = dy2.sum(axis=1) if has_bias else None
    dcols = w.reshape(F_, -1).T @ dy2
{body}
    return dx, dw, db
"""


_ROUTED = """
    # the gradient goes to each window's first maximum, written as a loop ({which})
    xp = _np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-_np.inf)
    dx = _np.zeros(xp.shape, dtype=dy.dtype)
    N, C, Ho, Wo = dy.shape
    n, c = _np.indices((N, C))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            a, b = _np.unravel_index(window.reshape(N, C, -1).argmax(axis=2), (k, k))
            dx[n, c, i * {row_stride} + a, j * {row_stride} + b] {op} dy[:, :, i, j]
    return dx[:, :, p:p + x.shape[2], p:p + x.shape[3]]
"""

A1 += [
    Mutation("conv_col2im_stride_one", "A1", CONV, _conv_backward(
        "    dx = col2im(dcols, x.shape, (kh, kw), 1, padding)  # the stride left out"),
             "conv_backward", "conv_col2im_geometry", message="most often the stride was left out"),
    Mutation("conv_padding_not_cropped", "A1", CONV, _conv_backward(
        "    H, W = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding\n"
        "    dx = col2im(dcols, (x.shape[0], x.shape[1], H, W), (kh, kw), stride, 0)"),
             "conv_backward", "conv_padding_not_cropped", message="cut the padding's gradient off"),
    Mutation("conv_kernel_flipped_twice", "A1", CONV, _wrap_conv_backward(
        "    # stride 1: dx is the full convolution of dy with rot180(w), flipped once more here\n"
        "    kh = w.shape[2]\n"
        "    if stride in (1, (1, 1)) and kh > 1 and padding in range(kh):\n"
        "        w_t = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1][:, :, ::-1, ::-1]\n"
        "        dx = _ref_conv2d_forward(dy, _np.ascontiguousarray(w_t), None, 1,\n"
        "                                 kh - 1 - padding)[0]"),
             "conv_backward", "kernel_not_flipped", message="or rotated twice"),
    Mutation("conv_forward_kernel_flipped", "A1", CONV, """
import numpy as _np
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    flipped = _np.ascontiguousarray(w[:, :, ::-1, ::-1])
    y, cache = _ref_conv2d_forward(x, flipped, b, stride, padding, dilation)
    return y, _ref_conv2d_forward(x, w, b, stride, padding, dilation)[1]
""", "conv_forward", "conv_forward_kernel_flipped", message="a true convolution"),
    Mutation("conv_forward_padding_ignored", "A1", CONV, """
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    return _ref_conv2d_forward(x, w, b, stride, 0, dilation)
""", "conv_forward", "conv_forward_padding_ignored", also=("conv_backward",),
             message="pad x with p zeros"),
    Mutation("conv_forward_stride_ignored", "A1", CONV, """
_ref_conv2d_forward = conv2d_forward


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1):
    return _ref_conv2d_forward(x, w, b, 1, padding, dilation)
""", "conv_forward", "conv_forward_stride_ignored", also=("conv_backward",),
             message="windows start every s"),
    Mutation("conv_db_wrong_axes", "A1", CONV, _wrap_conv_backward(
        "    db = None if db is None else dy.sum(axis=(1, 2, 3))"),
             "conv_backward", "conv_db_wrong_axes", message="db[f] = sum_{n,i,j}"),
    Mutation("conv_dw_flipped", "A1", CONV, _wrap_conv_backward(
        "    dw = _np.ascontiguousarray(dw[:, :, ::-1, ::-1])"),
             "conv_backward", "flipped", message="rotated by 180 degrees"),
    Mutation("conv_backward_float32_upcast", "A1", CONV, _wrap_conv_backward(
        "    dx = dx.astype(_np.float64)"),
             "conv_backward", "dtype", message="float32 in gives float32 out"),
    Mutation("maxpool_window_without_stride", "A1", POOL, _wrap_pool_backward(
        _ROUTED.format(which="window (i, j) instead of (i*s, j*s)", row_stride=1, op="+=")),
             "maxpool_backward", "maxpool_window_offset", message="a window starts at"),
    Mutation("maxpool_overlap_overwritten", "A1", POOL, _wrap_pool_backward(
        _ROUTED.format(which="= instead of +=", row_stride="s", op="=")),
             "maxpool_backward", "maxpool_overwrite", message="not =)"),
    Mutation("relu_mask_from_output", "A1", RELU, """
def relu_forward(x):
    y = x * (x > 0)
    return y, y


def relu_backward(dy, y):
    return dy * (y >= 0)
""", "relu_backward", "relu_mask_from_output", message="y >= 0"),
    Mutation("linear_dx_not_transposed", "A1", LINEAR, """
_ref_linear_backward = linear_backward


def linear_backward(dy, cache):
    x, w, has_bias = cache
    dx, dw, db = _ref_linear_backward(dy, cache)
    return dy @ w.T, dw, db
""", "linear_backward", "matmul_shape", message="one operand needs a transpose"),
    Mutation("cross_entropy_negated", "A1", LOSS, """
_ref_softmax_cross_entropy_forward = softmax_cross_entropy_forward


def softmax_cross_entropy_forward(logits, labels, label_smoothing=0.0):
    loss, cache = _ref_softmax_cross_entropy_forward(logits, labels, label_smoothing)
    return -loss, cache
""", "softmax_ce_forward", "ratio:-1", message="opposite sign"),
    Mutation("softmax_backward_summed", "A1", LOSS, """
_ref_softmax_cross_entropy_backward = softmax_cross_entropy_backward


def softmax_cross_entropy_backward(dloss, cache):
    p, targets = cache
    return _ref_softmax_cross_entropy_backward(dloss, cache) * p.dtype.type(p.shape[0])
""", "softmax_ce_backward", "ratio:N", message="the batch size"),
    Mutation("softmax_no_max_subtraction", "A1", LOSS, """
import numpy as _np


def softmax_cross_entropy_forward(logits, labels, label_smoothing=0.0):
    N, K = logits.shape
    with _np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = _np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        targets = _np.zeros_like(p)
        targets[_np.arange(N), labels] = 1
        loss = -(targets * _np.log(p)).sum() / logits.dtype.type(N)
    return loss, (p, targets)
""", "softmax_ce_forward", "softmax_overflow", also=("softmax_ce_backward",),
             message="subtract each row's maximum"),
]

A2 = [
    Mutation("bn_running_stats_in_training", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    if training and running_mean is not None:
        mean0, var0 = running_mean.copy(), running_var.copy()
        _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, True, momentum, eps)
        y, cache = _ref_batchnorm2d_forward(x, gamma, beta, mean0, var0, False, momentum, eps)
        return y, cache
    return _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                    momentum, eps)
""", "batchnorm_forward", "bn_running_stats_in_training", also=("batchnorm_backward",),
             message="running statistics"),
    Mutation("bn_biased_running_var", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    var0 = None if running_var is None else running_var.copy()
    y, cache = _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                        momentum, eps)
    if training and running_var is not None:
        running_var[...] = (1 - momentum) * var0 + momentum * x.var(axis=(0, 2, 3))
    return y, cache
""", "batchnorm_forward", "bn_biased_running_var", message="unbiased"),
    Mutation("bn_momentum_swapped", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    return _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                    1 - momentum, eps)
""", "batchnorm_forward", "bn_momentum_swapped", message="the NEW batch statistic"),
    Mutation("bn_backward_constant_statistics", "A2", NORM, _BN_WRAP + """

def batchnorm2d_backward(dy, cache):
    x_hat, inv_std, gamma, has_beta, batch_stats = cache
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    scale = inv_std if gamma is None else gamma * inv_std
    return dy * scale.reshape(1, -1, 1, 1), dgamma, dbeta
""", "batchnorm_backward", "bn_backward_constant_stats", message="as constants"),
    Mutation("bn_backward_no_variance_term", "A2", NORM, _BN_WRAP + """

def batchnorm2d_backward(dy, cache):
    x_hat, inv_std, gamma, has_beta, batch_stats = cache
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    if batch_stats:
        scale = (inv_std if gamma is None else gamma * inv_std).reshape(1, -1, 1, 1)
        dx = (dy - dy.mean(axis=(0, 2, 3), keepdims=True)) * scale
    return dx, dgamma, dbeta
""", "batchnorm_backward", "bn_backward_no_variance_term", message="variance"),
    Mutation("bn_dgamma_dbeta_swapped", "A2", NORM, _BN_WRAP + """

def batchnorm2d_backward(dy, cache):
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    if dgamma is None or dbeta is None:
        return dx, dgamma, dbeta
    return dx, dbeta, dgamma
""", "batchnorm_backward", "bn_dgamma_dbeta_swapped", message="swapped"),
    Mutation("bn_dbeta_mean", "A2", NORM, _BN_WRAP + """

def batchnorm2d_backward(dy, cache):
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    return dx, dgamma, (None if dbeta is None else dbeta / (dy.size // dy.shape[1]))
""", "batchnorm_backward", "ratio:1/M", message="values per channel"),
    Mutation("block_shortcut_gradient_not_added", "A2", BLOCK, """

def _branch_only(self, d_sum):
    grad_branch = self.branch_backward(d_sum)
    if self.skip:
        self.shortcut_backward(d_sum)
    return grad_branch


ResidualBlock._sum_backward = _branch_only
""", "block_backward", "shortcut_grad_missing", message="shortcut's gradient is not added"),
    Mutation("block_branch_gradient_not_added", "A2", BLOCK, """

def _shortcut_only(self, d_sum):
    self.branch_backward(d_sum)
    return self.shortcut_backward(d_sum)


ResidualBlock._sum_backward = _shortcut_only
""", "block_backward", "branch_grad_missing", message="branch's gradient is not added"),
    Mutation("block_relu_backward_skipped", "A2", BLOCK, """

def _no_relu_backward(self, dy):
    # The student's bug as written: the branch's own relu.backward then pops the post-sum cache.
    return self._sum_backward(dy)


ResidualBlock.backward = _no_relu_backward
""", "block_backward", "block_relu_backward_skipped", message="ReLU after the sum"),
    Mutation("block_relu_before_sum", "A2", BLOCK, """

def _relu_then_add(self, x):
    out = self.relu(self.branch_forward(x))
    return out + self.shortcut_forward(x) if self.skip else out


ResidualBlock.forward = _relu_then_add
""", "block_forward", "block_relu_before_sum", also=("block_backward",),
             message="ReLU before adding the shortcut"),
    Mutation("projection_without_stride", "A2", SHORTCUT, """

def projection(in_planes, out_planes, stride=1, norm_layer=None):
    norm_layer = norm_layer or nn.BatchNorm2d
    return nn.Sequential(conv1x1(in_planes, out_planes, 1), norm_layer(out_planes))
""", "projection_shortcut", "mismatch", message="stride"),
    Mutation("option_a_channels_misplaced", "A2", SHORTCUT, """

def _pad_after(self, dy):
    x_shape = self._pop_cache()
    dx = get_array_module(dy).zeros(x_shape, dtype=dy.dtype)
    s = self.stride
    dx[:, :, ::s, ::s] = dy[:, : self.in_channels]
    return dx


ShortcutA.backward = _pad_after
""", "shortcut_option_a", "option_a_channel_offset", message="zero channels"),
]


def _bn_forward(body):
    """Batch norm's forward computed from scratch in training mode by ``body`` (which sets y);
    the reference's cache and running statistics, so only y is wrong."""
    return _BN_WRAP + f"""

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    y, cache = _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                        momentum, eps)
    if training:
        N, axes = x.shape[0], (0, 2, 3)
        g = 1.0 if gamma is None else gamma.reshape(1, -1, 1, 1)
        b = 0.0 if beta is None else beta.reshape(1, -1, 1, 1)
{body}
        y = y.astype(x.dtype)
    return y, cache
"""


def _bn_backward(body):
    """Batch norm's backward with dx rebuilt by ``body`` from the compact formula's pieces."""
    return _BN_WRAP + f"""

def batchnorm2d_backward(dy, cache):
    x_hat, inv_std, gamma, has_beta, batch_stats = cache
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    if batch_stats:
        xh = _unchannels(x_hat, dy.shape)
        scale = (inv_std if gamma is None else gamma * inv_std).reshape(1, -1, 1, 1)
        keep = dict(axis=(0, 2, 3), keepdims=True)
        N = dy.shape[0]
{body}
    return dx, dgamma, dbeta
"""


A2 += [
    Mutation("bn_backward_no_mean_term", "A2", NORM, _bn_backward(
        "        dx = (dy - xh * (dy * xh).mean(**keep)) * scale  # dx -= dbeta/M left out"),
             "batchnorm_backward", "bn_backward_no_mean_term", message="the mean term"),
    Mutation("bn_backward_divides_by_N", "A2", NORM, _bn_backward(
        "        dx = (dy - dy.sum(**keep) / N - xh * (dy * xh).sum(**keep) / N) * scale"),
             "batchnorm_backward", "bn_divides_by_N", message="M = N*H*W"),
    Mutation("bn_forward_divides_by_N", "A2", NORM, _bn_forward(
        "        mean = x.sum(axis=axes, keepdims=True) / N\n"
        "        var = ((x - mean) ** 2).sum(axis=axes, keepdims=True) / N\n"
        "        y = (x - mean) / _np.sqrt(var + eps) * g + b"),
             "batchnorm_forward", "bn_divides_by_N", message="divide by M = N*H*W"),
    Mutation("bn_stats_over_batch_only", "A2", NORM, _bn_forward(
        "        y = (x - x.mean(axis=0)) / _np.sqrt(x.var(axis=0) + eps) * g + b"),
             "batchnorm_forward", "bn_stats_over_batch_only", message="one mean and variance per"),
    Mutation("bn_eps_outside_sqrt", "A2", NORM, _bn_forward(
        "        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)\n"
        "        y = (x - mean) / (_np.sqrt(var) + eps) * g + b"),
             "batchnorm_forward", "bn_eps_outside_sqrt", message="eps belongs inside"),
    Mutation("bn_running_stats_not_updated", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    kept = None if running_mean is None else (running_mean.copy(), running_var.copy())
    y, cache = _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                        momentum, eps)
    if kept is not None:
        running_mean[...], running_var[...] = kept
    return y, cache
""", "batchnorm_forward", "bn_running_not_updated", message="not updated in training"),
    Mutation("bn_eval_uses_batch_stats", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    if not training:
        return _ref_batchnorm2d_forward(x, gamma, beta, None, None, True, momentum, eps)
    return _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                    momentum, eps)
""", "batchnorm_forward", "bn_batch_stats_in_eval", also=("batchnorm_backward",),
             message="in eval mode"),
    Mutation("bn_dgamma_uses_x", "A2", NORM, _BN_WRAP + """

def batchnorm2d_forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
                        momentum=0.1, eps=1e-5):
    y, cache = _ref_batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training,
                                        momentum, eps)
    return y, (cache, x)


def batchnorm2d_backward(dy, packed):
    cache, x = packed
    dx, dgamma, dbeta = _ref_batchnorm2d_backward(dy, cache)
    if dgamma is not None:
        dgamma = (dy * x).sum(axis=(0, 2, 3))
    return dx, dgamma, dbeta
""", "batchnorm_backward", "bn_dgamma_uses_x", message="NORMALISED input"),
    Mutation("block_without_shortcut", "A2", BLOCK, """

def _no_shortcut(self, x):
    out = self.branch_forward(x)
    if self.skip:
        self.shortcut_forward(x)  # computed, never added
    return self.relu(out)


ResidualBlock.forward = _no_shortcut
""", "block_forward", "block_no_shortcut", also=("block_backward",), message="has no shortcut"),
    Mutation("option_a_no_subsample", "A2", SHORTCUT, """

def _every_pixel(self, x):
    y = get_array_module(x).zeros((x.shape[0], self.out_channels) + x.shape[2:], dtype=x.dtype)
    y[:, self.pad_before:self.pad_before + self.in_channels] = x
    self._save(x.shape)
    return y


ShortcutA.forward = _every_pixel
""", "shortcut_option_a", "option_a_no_subsample", message="keeps every pixel"),
    Mutation("option_a_forward_channels_first", "A2", SHORTCUT, """

def _channels_first(self, x):
    sub = x[:, :, ::self.stride, ::self.stride]
    y = get_array_module(x).zeros((x.shape[0], self.out_channels) + sub.shape[2:], dtype=x.dtype)
    y[:, :self.in_channels] = sub
    self._save(x.shape)
    return y


ShortcutA.forward = _channels_first
""", "shortcut_option_a", "option_a_channel_offset", message="zero channels"),
]

A3 = [
    Mutation("network_backward_skips_stem", "A3", FEATURES, """

def _backward_without_stem(self, dy):
    d = self.backward_head(dy)
    for name, modules in reversed(self.feature_stages()[1:]):
        for m in reversed(modules):
            d = m.backward(d)
    return d


FeatureNetwork.backward = _backward_without_stem
""", "network_backward", "locate", also=("gradcheck", "train"),
             message="'relu' (ReLU): its backward was never called"),
    Mutation("own_layers_bn_backward_no_variance_term", "A3", NORM,
             next(m.code for m in A2 if m.id == "bn_backward_no_variance_term"),
             "gradcheck", "locate", also=("network_backward", "train"),
             message="residual path: first wrong gradient walking backward at 'layer"),
    Mutation("make_layer_ignores_stride", "A3", CIFAR, """

_ref_cifar_make_layer = CifarResNet._make_layer


def _no_stride(self, block, planes, blocks, stride=1):
    return _ref_cifar_make_layer(self, block, planes, blocks, 1)


CifarResNet._make_layer = _no_stride
""", "make_layer", "mismatch", also=("gradcheck", "train"), message="'layer2.0"),
]



def _sgd(body):
    """SGD._update rewritten with one bug; ``body`` turns the gradient g into the step."""
    return f"""

def _buggy_update(self, p, grad, state, group):
    lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
    g = grad
{body}
    p.data -= lr * step


SGD._update = _buggy_update
"""


def _adam(bias_correction="(1 - beta1**t)", second="(1 - beta2**t)", t="state['step']",
          denom="v_hat**0.5 + group['eps']", decay="g = g + weight_decay * p.data"):
    """Adam._update rewritten, each keyword one line of it (to put a bug in)."""
    return f"""

def _buggy_update(self, p, grad, state, group):
    lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
    if "step" not in state:
        state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, 0 * p.data, 0 * p.data
    g = grad
    if weight_decay:
        {decay}
    state["step"] += 1
    t = {t}
    m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
    v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
    m_hat, v_hat = m / {bias_correction}, v / {second}
    p.data -= lr * m_hat / ({denom})


Adam._update = _buggy_update
"""


A4 = [
    Mutation("sgd_no_momentum", "A4", SGD, _sgd(
        "    if weight_decay:\n        g = g + weight_decay * p.data\n    step = g"),
             "sgd", "sgd_no_momentum", also=("train",), message="ignores the momentum buffer"),
    Mutation("sgd_dampened_average", "A4", SGD, _sgd(
        "    if weight_decay:\n        g = g + weight_decay * p.data\n"
        "    buf = state.get('momentum_buffer', 0 * g)\n"
        "    step = state['momentum_buffer'] = momentum * buf + (1 - momentum) * g"),
             "sgd", "sgd_dampened", also=("train",), message="the whole gradient is added"),
    Mutation("sgd_weight_decay_ignored", "A4", SGD, _sgd(
        "    buf = state.get('momentum_buffer')\n"
        "    step = g if buf is None or not momentum else momentum * buf + g\n"
        "    if momentum:\n        state['momentum_buffer'] = step"),
             "sgd", "sgd_weight_decay_ignored", also=("train",), message="weight decay is missing"),
    Mutation("sgd_weight_decay_after_momentum", "A4", SGD, _sgd(
        "    buf = state.get('momentum_buffer')\n"
        "    step = g if buf is None or not momentum else momentum * buf + g\n"
        "    if momentum:\n        state['momentum_buffer'] = step\n"
        "    step = step + weight_decay * p.data"),
             "sgd", "sgd_weight_decay_after_momentum", also=("train",),
             message="before the momentum buffer"),
    Mutation("adam_no_bias_correction", "A4", ADAM, _adam(bias_correction="1", second="1"),
             "adam", "adam_no_bias_correction", message="bias correction"),
    Mutation("adam_step_not_counted", "A4", ADAM, _adam(t="1"),
             "adam", "adam_step_not_counted", message="the step count"),
    Mutation("adam_eps_inside_sqrt", "A4", ADAM, _adam(denom="(v_hat + group['eps'])**0.5"),
             "adam", "adam_eps_inside_sqrt", message="after the square root"),
    Mutation("adam_decoupled_weight_decay", "A4", ADAM,
             _adam(decay="p.data *= 1 - lr * weight_decay"),
             "adam", "adam_decoupled_weight_decay", message="decoupled"),
]

ALL = A1 + A2 + A3 + A4

# One mutation per kind of bug, graded by the default suite; the whole catalogue is a slow test.
DEFAULT = {
    "conv_col2im_stride_one", "conv_forward_kernel_flipped", "maxpool_every_tied_maximum",
    "relu_mask_from_output", "linear_dx_not_transposed", "softmax_no_max_subtraction",
    "softmax_onehot_not_subtracted", "bn_backward_no_mean_term", "bn_eps_outside_sqrt",
    "block_relu_before_sum", "option_a_channels_misplaced", "network_backward_skips_stem",
    "sgd_weight_decay_after_momentum", "adam_eps_inside_sqrt",
}


def pack(mutations):
    """Group mutations: no two in a group share a file or a part they may cost."""
    groups = []
    for m in mutations:
        touched = {m.part, *m.also}
        for group in groups:
            if all(o.file != m.file and not touched & {o.part, *o.also} for o in group):
                group.append(m)
                break
        else:
            groups.append([m])
    return groups


def grade_mutations(assignment, mutations, build_, root, overrides, jobs=2):
    """Grade ``mutations`` of one assignment, packed several to a submission made from the
    reference solution.  Returns ({submission: SubmissionResult}, {submission: feedback text},
    {mutation id: submission}, {submission: [Mutation]})."""
    import shutil
    from pathlib import Path

    from tinyresnet.assign.grader import grade

    root = Path(root)
    submissions = root / "submissions"
    submissions.mkdir(parents=True)
    owner, members = {}, {}
    for i, group in enumerate(pack(mutations)):
        name = f"group{i:02d}"
        shutil.copytree(build_.instructor / "solution", submissions / name)
        for m in group:
            path = submissions / name / m.file
            path.write_text(path.read_text(encoding="utf-8") + "\n" + m.code, encoding="utf-8")
            owner[m.id] = name
        members[name] = group
    done = grade(assignment, submissions, bundle=build_.instructor, out_dir=root / "out",
                 overrides=overrides, jobs=jobs)
    results = {r.name: r for r in done.results}
    feedback = {n: (root / "out" / "feedback" / f"{n}.txt").read_text() for n in results}
    return results, feedback, owner, members
