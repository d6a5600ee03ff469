"""A2 public tests: run them with ``python -m tinyresnet.assign check A2``.

The block tests put a plain per-channel affine layer (``ChannelAffine``, below) where batch norm
would be, so that a bug in your batch norm costs points only in the batch-norm parts.
"""
import numpy as np

from tinyresnet import functional as F
from tinyresnet import nn
from tinyresnet.assign.harness import Suite
from tinyresnet.models import BasicBlock
from tinyresnet.models.shortcut import ShortcutA, projection

suite = Suite()
AXES = (0, 2, 3)


def normal(*shape, mean=0.0, std=1.0):
    return lambda rng: mean + std * rng.standard_normal(shape)


class ChannelAffine(nn.Module):
    """y = weight * x + bias per channel: stands in for batch norm in the block tests."""

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
    """Give every floating-point parameter and buffer a stored random value."""
    state = {}
    for key, value in module.state_dict().items():
        if value.dtype.kind != "f":
            state[key] = value
            continue
        center = 1.0 if (value.ndim == 1 and key.endswith("weight")) else 0.0
        state[key] = t.input(f"state.{key}", normal(*value.shape, mean=center, std=0.3))
    module.load_state_dict(state)
    return module


# ---- 2. batch normalization ---------------------------------------------------------------------
BN_CASES = [
    dict(N=4, C=3, H=3, W=2, training=True),
    dict(N=2, C=2, H=4, W=4, training=True, momentum=0.3),
    dict(N=3, C=2, H=2, W=3, training=False),
]


def bn_inputs(t, N, C, H, W):
    x = t.input("x", normal(N, C, H, W, mean=2.0, std=3.0))
    gamma = t.input("gamma", normal(C, mean=1.0, std=0.5))
    beta = t.input("beta", normal(C))
    running_mean = t.input("running_mean", normal(C))
    running_var = t.input("running_var", lambda rng: rng.uniform(0.5, 2.0, C))
    return x, gamma, beta, running_mean, running_var


@suite.test("batchnorm_forward", cases=BN_CASES)
def batchnorm_forward(t, N, C, H, W, training, momentum=0.1):
    x, gamma, beta, running_mean, running_var = bn_inputs(t, N, C, H, W)
    rm0, rv0 = t.input("running_mean", None), t.input("running_var", None)
    y, _ = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum)
    M = N * H * W
    mean, var = x.mean(axis=AXES), x.var(axis=AXES)
    if training:
        def eps_outside():
            keep = dict(axis=AXES, keepdims=True)
            x_hat = (x - x.mean(**keep)) / (np.sqrt(x.var(**keep)) + 1e-5)
            return x_hat * gamma[None, :, None, None] + beta[None, :, None, None]

        t.expect("y", y, hints={"M": M}, alternatives={
            "bn_running_stats_in_training": lambda: (
                F.batchnorm2d_forward(x, gamma, beta, rm0.copy(), rv0.copy(), False)[0]),
            "bn_eps_outside_sqrt": eps_outside})
    else:
        t.expect("y", y, hints={"M": M}, alternatives={"bn_batch_stats_in_eval": lambda: (
            F.batchnorm2d_forward(x, gamma, beta, None, None, True)[0])})
    t.expect("running_mean", running_mean, alternatives={
        "bn_momentum_swapped": lambda: momentum * rm0 + (1 - momentum) * mean})
    t.expect("running_var", running_var, alternatives={
        "bn_biased_running_var": lambda: (1 - momentum) * rv0 + momentum * var,
        "bn_momentum_swapped": lambda: momentum * rv0 + (1 - momentum) * var * M / (M - 1)})


@suite.test("batchnorm_backward", cases=BN_CASES)
def batchnorm_backward(t, N, C, H, W, training, momentum=0.1):
    x, gamma, beta, running_mean, running_var = bn_inputs(t, N, C, H, W)
    y, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training, momentum)
    dy = t.input("dy", normal(N, C, H, W))
    dx, dgamma, dbeta = F.batchnorm2d_backward(dy, cache)
    M = N * H * W
    mean, var = x.mean(axis=AXES, keepdims=True), x.var(axis=AXES, keepdims=True)
    scale = gamma[None, :, None, None] / np.sqrt(var + 1e-5)
    x_hat = (x - mean) / np.sqrt(var + 1e-5)
    alternatives = {}
    if training:
        alternatives = {
            "bn_backward_constant_stats": lambda: dy * scale,
            "bn_backward_no_variance_term": lambda: (dy - dy.mean(axis=AXES, keepdims=True)) * scale,
            "bn_backward_no_mean_term": lambda: (
                dy - x_hat * (dy * x_hat).mean(axis=AXES, keepdims=True)) * scale,
        }
    t.expect("dx", dx, kind="gradient", hints={"M": M, "N": N}, alternatives=alternatives)
    t.expect("dgamma", dgamma, kind="gradient", hints={"M": M, "N": N}, alternatives={
        "bn_dgamma_dbeta_swapped": lambda: dy.sum(axis=AXES)})
    t.expect("dbeta", dbeta, kind="gradient", hints={"M": M, "N": N}, alternatives={
        "bn_dgamma_dbeta_swapped": lambda: (dy * x_hat).sum(axis=AXES)})


# ---- 3. the residual block ----------------------------------------------------------------------
BLOCK_CASES = [
    dict(N=2, inplanes=4, planes=4, H=5, W=5, stride=1),
    dict(N=2, inplanes=3, planes=6, H=6, W=6, stride=2, downsample=True),
]


def make_block(t, inplanes, planes, stride, downsample):
    shortcut = None
    if downsample:  # built here from plain layers: the block tests do not need your projection
        shortcut = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                 ChannelAffine(planes))
    block = BasicBlock(inplanes, planes, stride, shortcut, norm_layer=ChannelAffine).double()
    return randomize(t, block)


@suite.test("block_forward", cases=BLOCK_CASES)
def block_forward(t, N, inplanes, planes, H, W, stride, downsample=False):
    block = make_block(t, inplanes, planes, stride, downsample)
    x = t.input("x", normal(N, inplanes, H, W))

    def relu_before_sum():
        fresh = make_block(t, inplanes, planes, stride, downsample)
        return fresh.relu(fresh.branch_forward(x)) + fresh.shortcut_forward(x)

    t.expect("out", block(x), alternatives={"block_relu_before_sum": relu_before_sum})


@suite.test("block_backward", cases=BLOCK_CASES)
def block_backward(t, N, inplanes, planes, H, W, stride, downsample=False):
    block = make_block(t, inplanes, planes, stride, downsample)
    x = t.input("x", normal(N, inplanes, H, W))
    out = block(x)
    dy = t.input("dy", normal(*np.shape(out)))
    block.zero_grad()
    dx = block.backward(dy)

    def without_relu_backward():
        fresh = make_block(t, inplanes, planes, stride, downsample)
        fresh(x)
        return fresh._sum_backward(dy)

    t.expect("dx", dx, kind="gradient", alternatives={
        "shortcut_grad_missing": lambda: _one_part(t, inplanes, planes, stride, downsample, x, dy,
                                                   "branch"),
        "branch_grad_missing": lambda: _one_part(t, inplanes, planes, stride, downsample, x, dy,
                                                 "shortcut"),
        "block_relu_backward_skipped": without_relu_backward})
    skipped = {}

    def skipped_grads():
        if not skipped:
            skipped.update(_fresh_grads(make_block(t, inplanes, planes, stride, downsample), x, dy))
        return skipped

    for name, p in block.named_parameters():
        t.expect(f"d{name}", p.grad, kind="gradient", alternatives={
            "block_relu_backward_skipped": lambda name=name: skipped_grads()[name]})


def _one_part(t, inplanes, planes, stride, downsample, x, dy, path):
    """dx through one path only (a known wrong answer): the other part was not added."""
    block = make_block(t, inplanes, planes, stride, downsample)
    block(x)
    d_sum = block.relu.backward(dy)
    return block.branch_backward(d_sum) if path == "branch" else block.shortcut_backward(d_sum)


def _fresh_grads(block, x, dy):
    """Parameter gradients when the ReLU after the sum is skipped (a known wrong answer)."""
    block(x)
    block.zero_grad()
    block._sum_backward(dy)
    return [(n, p.grad) for n, p in block.named_parameters()]


# ---- 3.3 projection shortcut --------------------------------------------------------------------
@suite.test("projection_shortcut", cases=[dict(N=2, inplanes=3, planes=6, H=6, W=6, stride=2)])
def projection_shortcut(t, N, inplanes, planes, H, W, stride):
    shortcut = projection(inplanes, planes, stride, norm_layer=ChannelAffine).double()
    layers = [[type(m).__name__, list(getattr(m, "kernel_size", [])), list(getattr(m, "stride", [])),
               getattr(m, "bias", 0) is None] for m in shortcut]
    t.expect_same("layers (type, kernel, stride, no bias)", layers)
    t.expect_same("parameter shapes", {k: list(v.shape) for k, v in shortcut.state_dict().items()})
    randomize(t, shortcut)
    x = t.input("x", normal(N, inplanes, H, W))
    t.expect("y", shortcut(x))
    t.expect_same("default norm layer", type(projection(inplanes, planes, stride)[1]).__name__)


# ---- 3.4 option A shortcut ----------------------------------------------------------------------
SHORTCUT_A_CASES = [
    dict(N=2, C=4, H=6, W=6, out=8, stride=2),
    dict(N=1, C=3, H=4, W=4, out=3, stride=1),
]


@suite.test("shortcut_option_a", cases=SHORTCUT_A_CASES)
def shortcut_option_a(t, N, C, H, W, out, stride):
    shortcut = ShortcutA(C, out, stride)
    x = t.input("x", normal(N, C, H, W))
    y = shortcut(x)

    def channels_first():
        wrong = np.zeros(np.shape(y))
        wrong[:, :C] = x[:, :, ::stride, ::stride]
        return wrong

    t.expect("y", y, alternatives={"option_a_channel_offset": channels_first})
    dy = t.input("dy", normal(*np.shape(y)))

    def gradient_of_first_channels():
        wrong = np.zeros(x.shape)
        wrong[:, :, ::stride, ::stride] = dy[:, :C]
        return wrong

    t.expect("dx", shortcut.backward(dy), kind="gradient",
             alternatives={"option_a_channel_offset": gradient_of_first_channels})
