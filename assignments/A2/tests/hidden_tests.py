"""A2 hidden tests: kept by the instructor, run at grading (students see parameters and
diagnoses only)."""
import numpy as np

from tinyresnet import functional as F
from tinyresnet import nn
from tinyresnet.assign.harness import Suite
from tinyresnet.models import BasicBlock
from tinyresnet.models.shortcut import ShortcutA, projection

suite = Suite()
AXES = (0, 2, 3)


def normal(*shape, mean=0.0, std=1.0, dtype="float64"):
    return lambda rng: (mean + std * rng.standard_normal(shape)).astype(dtype)


class ChannelAffine(nn.Module):
    """Per-channel affine in place of batch norm (isolates the block from the BN parts)."""

    def __init__(self, num_features):
        super().__init__()
        self.weight = nn.Parameter(np.ones(num_features))
        self.bias = nn.Parameter(np.zeros(num_features))

    def forward(self, x):
        self._save(x)
        return x * self.weight.data[None, :, None, None] + self.bias.data[None, :, None, None]

    def backward(self, dy):
        x = self._pop_cache()
        self.weight.accumulate((dy * x).sum(axis=AXES))
        self.bias.accumulate(dy.sum(axis=AXES))
        return dy * self.weight.data[None, :, None, None]


def randomize(t, module):
    state = {}
    for key, value in module.state_dict().items():
        if value.dtype.kind != "f":
            state[key] = value
            continue
        center = 1.0 if (value.ndim == 1 and key.endswith("weight")) else 0.0
        state[key] = t.input(f"state.{key}", normal(*value.shape, mean=center, std=0.3))
    module.load_state_dict(state)
    return module


BN_CASES = [
    dict(N=2, C=1, H=5, W=3, training=True),
    dict(N=5, C=4, H=1, W=1, training=True, momentum=0.25),
    dict(N=3, C=3, H=2, W=4, training=True, affine=False),
    dict(N=2, C=3, H=3, W=3, training=False, affine=False),
    dict(N=4, C=2, H=3, W=2, training=True, dtype="float32"),
    dict(N=2, C=5, H=4, W=3, training=False, momentum=0.3),
]


def bn_inputs(t, N, C, H, W, affine, dtype):
    x = t.input("x", normal(N, C, H, W, mean=-1.5, std=2.0, dtype=dtype))
    gamma = t.input("gamma", normal(C, mean=1.0, std=0.5, dtype=dtype)) if affine else None
    beta = t.input("beta", normal(C, dtype=dtype)) if affine else None
    running_mean = t.input("running_mean", normal(C, dtype=dtype))
    running_var = t.input("running_var", lambda rng: rng.uniform(0.5, 2.0, C).astype(dtype))
    return x, gamma, beta, running_mean, running_var


@suite.test("batchnorm_forward", cases=BN_CASES)
def batchnorm_forward_hidden(t, N, C, H, W, training, momentum=0.1, affine=True, dtype="float64"):
    x, gamma, beta, running_mean, running_var = bn_inputs(t, N, C, H, W, affine, dtype)
    rm0, rv0 = t.input("running_mean", None), t.input("running_var", None)
    y, _ = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum)
    M = N * H * W
    kind = "float32" if dtype == "float32" else "output"
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    g = gamma[None, :, None, None] if affine else 1.0
    b = beta[None, :, None, None] if affine else 0.0

    def normalised(mu, variance, eps_inside=True):
        root = np.sqrt(variance + 1e-5) if eps_inside else np.sqrt(variance) + 1e-5
        return ((x - mu) / root * g + b).astype(dtype)

    keep = dict(axis=AXES, keepdims=True)
    if training:
        alternatives = {
            "bn_running_stats_in_training": lambda: F.batchnorm2d_forward(
                x, gamma, beta, rm0.copy(), rv0.copy(), False)[0],
            "bn_stats_over_batch_only": lambda: normalised(x.mean(axis=0), x.var(axis=0)),
            "bn_divides_by_N": lambda: normalised(
                x.sum(**keep) / N, ((x - x.sum(**keep) / N) ** 2).sum(**keep) / N),
            "bn_eps_outside_sqrt": lambda: normalised(x.mean(**keep), x.var(**keep), False),
        }
        running = {"bn_running_not_updated": (rm0, rv0)}
    else:
        alternatives = {"bn_batch_stats_in_eval": lambda: F.batchnorm2d_forward(
            x, gamma, beta, None, None, True)[0]}
        running = {}
    t.expect("y", y, kind=kind, hints={"M": M}, alternatives=alternatives, check_dtype=True)
    t.expect("running_mean", running_mean, kind=kind, check_dtype=True, alternatives={
        "bn_momentum_swapped": lambda: momentum * rm0 + (1 - momentum) * mean,
        **{sig: (lambda pair=pair: pair[0]) for sig, pair in running.items()}})
    t.expect("running_var", running_var, kind=kind, check_dtype=True, alternatives={
        "bn_biased_running_var": lambda: (1 - momentum) * rv0 + momentum * var,
        "bn_momentum_swapped": lambda: momentum * rv0 + (1 - momentum) * var * M / (M - 1),
        **{sig: (lambda pair=pair: pair[1]) for sig, pair in running.items()}})


@suite.test("batchnorm_backward", cases=BN_CASES)
def batchnorm_backward_hidden(t, N, C, H, W, training, momentum=0.1, affine=True, dtype="float64"):
    x, gamma, beta, running_mean, running_var = bn_inputs(t, N, C, H, W, affine, dtype)
    _, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum)
    dy = t.input("dy", normal(N, C, H, W, dtype=dtype))
    dx, dgamma, dbeta = F.batchnorm2d_backward(dy, cache)
    M = N * H * W
    kind = "float32" if dtype == "float32" else "gradient"
    mean, var = x.mean(axis=AXES, keepdims=True), x.var(axis=AXES, keepdims=True)
    g = gamma[None, :, None, None] if affine else 1.0
    scale = g / np.sqrt(var + 1e-5)
    x_hat = (x - mean) / np.sqrt(var + 1e-5)
    alternatives = {}
    keep = dict(axis=AXES, keepdims=True)
    if training:
        alternatives = {
            "bn_backward_constant_stats": lambda: dy * scale,
            "bn_backward_no_variance_term": lambda: (dy - dy.mean(**keep)) * scale,
            "bn_backward_no_mean_term": lambda: (dy - x_hat * (dy * x_hat).mean(**keep)) * scale,
        }
        if H * W > 1:
            alternatives["bn_divides_by_N"] = lambda: (
                dy - dy.sum(**keep) / N - x_hat * (dy * x_hat).sum(**keep) / N) * scale
    t.expect("dx", dx, kind=kind, hints={"M": M, "N": N}, alternatives=alternatives,
             check_dtype=True)
    if affine:
        t.expect("dgamma", dgamma, kind=kind, hints={"M": M, "N": N}, check_dtype=True,
                 alternatives={"bn_dgamma_dbeta_swapped": lambda: dy.sum(axis=AXES),
                               "bn_dgamma_uses_x": lambda: (dy * x).sum(axis=AXES)})
        t.expect("dbeta", dbeta, kind=kind, hints={"M": M, "N": N}, check_dtype=True,
                 alternatives={"bn_dgamma_dbeta_swapped": lambda: (dy * x_hat).sum(axis=AXES)})
    else:
        t.check(dgamma is None and dbeta is None,
                "without the affine transform (gamma and beta None) dgamma and dbeta are None")


BLOCK_CASES = [
    dict(N=3, inplanes=5, planes=5, H=7, W=4, stride=1),
    dict(N=2, inplanes=4, planes=6, H=7, W=5, stride=2, downsample=True),
    dict(N=1, inplanes=2, planes=5, H=4, W=4, stride=1, downsample=True),
    dict(N=2, inplanes=3, planes=3, H=3, W=3, stride=1),
]


def make_block(t, inplanes, planes, stride, downsample):
    shortcut = None
    if downsample:
        shortcut = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                 ChannelAffine(planes))
    block = BasicBlock(inplanes, planes, stride, shortcut, norm_layer=ChannelAffine).double()
    return randomize(t, block)


@suite.test("block_forward", cases=BLOCK_CASES)
def block_forward_hidden(t, N, inplanes, planes, H, W, stride, downsample=False):
    block = make_block(t, inplanes, planes, stride, downsample)
    x = t.input("x", normal(N, inplanes, H, W))

    def relu_before_sum():
        fresh = make_block(t, inplanes, planes, stride, downsample)
        return fresh.relu(fresh.branch_forward(x)) + fresh.shortcut_forward(x)

    def without_shortcut():
        fresh = make_block(t, inplanes, planes, stride, downsample)
        return fresh.relu(fresh.branch_forward(x))

    t.expect("out", block(x), alternatives={"block_relu_before_sum": relu_before_sum,
                                            "block_no_shortcut": without_shortcut})


@suite.test("block_backward", cases=BLOCK_CASES)
def block_backward_hidden(t, N, inplanes, planes, H, W, stride, downsample=False):
    block = make_block(t, inplanes, planes, stride, downsample)
    x = t.input("x", normal(N, inplanes, H, W))
    out = block(x)
    dy = t.input("dy", normal(*np.shape(out)))
    block.zero_grad()
    dx = block.backward(dy)
    t.expect("dx", dx, kind="gradient", alternatives={
        "shortcut_grad_missing": lambda: _one_part(t, inplanes, planes, stride, downsample, x, dy,
                                                   "branch"),
        "branch_grad_missing": lambda: _one_part(t, inplanes, planes, stride, downsample, x, dy,
                                                 "shortcut")})
    for name, p in block.named_parameters():
        t.expect(f"d{name}", p.grad, kind="gradient")
    t.expect("grad_shortcut", _one_part(t, inplanes, planes, stride, downsample, x, dy, "shortcut"),
             kind="gradient")


def _one_part(t, inplanes, planes, stride, downsample, x, dy, path):
    """dx through one path only: a known wrong answer, and (for the shortcut) a check of its own."""
    block = make_block(t, inplanes, planes, stride, downsample)
    block(x)
    d_sum = block.relu.backward(dy)
    return block.branch_backward(d_sum) if path == "branch" else block.shortcut_backward(d_sum)


PROJECTION_CASES = [
    dict(N=1, inplanes=4, planes=8, H=5, W=7, stride=1),
    dict(N=2, inplanes=3, planes=3, H=7, W=6, stride=2),
]


@suite.test("projection_shortcut", cases=PROJECTION_CASES)
def projection_shortcut_hidden(t, N, inplanes, planes, H, W, stride):
    shortcut = projection(inplanes, planes, stride, norm_layer=ChannelAffine).double()
    t.expect_same("parameter shapes", {k: list(v.shape) for k, v in shortcut.state_dict().items()})
    randomize(t, shortcut)
    x = t.input("x", normal(N, inplanes, H, W))
    y = shortcut(x)
    t.expect("y", y)
    dy = t.input("dy", normal(*np.shape(y)))
    t.expect("dx", shortcut.backward(dy), kind="gradient")
    block = BasicBlock(inplanes, planes, stride, norm_layer=ChannelAffine)
    t.expect_same("block parameter shapes", {k: list(v.shape) for k, v in block.state_dict().items()})


SHORTCUT_A_CASES = [
    dict(N=2, C=3, H=7, W=5, out=6, stride=2),
    dict(N=1, C=2, H=5, W=5, out=5, stride=2),
    dict(N=3, C=4, H=3, W=6, out=4, stride=1),
    dict(N=1, C=1, H=8, W=8, out=4, stride=3),
]


@suite.test("shortcut_option_a", cases=SHORTCUT_A_CASES)
def shortcut_option_a_hidden(t, N, C, H, W, out, stride):
    shortcut = ShortcutA(C, out, stride)
    x = t.input("x", normal(N, C, H, W))
    y = shortcut(x)

    def channels_first():
        wrong = np.zeros(np.shape(y))
        wrong[:, :C] = x[:, :, ::stride, ::stride]
        return wrong

    def every_pixel():
        wrong = np.zeros((N, out, H, W))
        p = (out - C) // 2
        wrong[:, p:p + C] = x
        return wrong

    alternatives = {"option_a_channel_offset": channels_first}
    if stride > 1:
        alternatives["option_a_no_subsample"] = every_pixel
    t.expect("y", y, alternatives=alternatives)
    dy = t.input("dy", normal(*np.shape(y)))

    def gradient_of_first_channels():
        wrong = np.zeros(x.shape)
        wrong[:, :, ::stride, ::stride] = dy[:, :C]
        return wrong

    t.expect("dx", shortcut.backward(dy), kind="gradient",
             alternatives={"option_a_channel_offset": gradient_of_first_channels})
