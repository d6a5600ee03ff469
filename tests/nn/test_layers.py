"""Every layer module: float64 gradient checks (grid and hypothesis fuzz) over its input and all
its parameters, module-level PyTorch parity after copying the weights, float32 throughout."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyresnet as tr
from tinyresnet import nn
from tinyresnet.gradcheck import check_module

from ._helpers import FUZZ, PARITY_TOL, away_from_zero, rel, spaced


class FixedMaskDropout(nn.Dropout):
    """Dropout that draws the same mask on every forward, so finite differences see one function."""

    def forward(self, x):
        tr.manual_seed(1234)
        return super().forward(x)


def _randomize(module, rng):
    """Random parameters (BN's default gamma = 1, beta = 0 would hide half its gradient)."""
    for p in module.parameters():
        p.data = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    return module


def _bn_with_running_stats(rng, C):
    bn = _randomize(nn.BatchNorm2d(C).double(), rng)
    bn.running_mean = rng.standard_normal(C)
    bn.running_var = rng.uniform(0.5, 2.0, C)
    return bn


# name -> (module factory taking rng, input factory taking rng)
CASES = {
    "conv-3x3": (lambda r: nn.Conv2d(2, 3, 3, padding=1), lambda r: r.standard_normal((2, 2, 5, 5))),
    "conv-1x1": (lambda r: nn.Conv2d(3, 2, 1), lambda r: r.standard_normal((2, 3, 3, 3))),
    "conv-7x7-stride2-pad3-batch1": (lambda r: nn.Conv2d(2, 2, 7, stride=2, padding=3, bias=False),
                                     lambda r: r.standard_normal((1, 2, 8, 8))),
    "conv-non-square-dilated": (lambda r: nn.Conv2d(2, 2, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                                lambda r: r.standard_normal((1, 2, 5, 6))),
    "conv-grouped": (lambda r: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
                     lambda r: r.standard_normal((2, 4, 5, 5))),
    "conv-same-even": (lambda r: nn.Conv2d(2, 3, (2, 3), padding="same"),
                       lambda r: r.standard_normal((2, 2, 4, 5))),
    "batchnorm-train": (lambda r: _randomize(nn.BatchNorm2d(3), r), lambda r: r.standard_normal((2, 3, 3, 3)) + 1),
    "batchnorm-train-no-affine": (lambda r: nn.BatchNorm2d(2, affine=False), lambda r: r.standard_normal((2, 2, 2, 3))),
    "batchnorm-eval": (lambda r: _bn_with_running_stats(r, 3).eval(), lambda r: r.standard_normal((2, 3, 3, 3))),
    "relu": (lambda r: nn.ReLU(), lambda r: away_from_zero(r, (2, 3, 3, 3))),
    "maxpool-3x3-stride2-pad1": (lambda r: nn.MaxPool2d(3, 2, 1), lambda r: spaced(r, (1, 2, 7, 7))),
    "maxpool-2x2": (lambda r: nn.MaxPool2d(2), lambda r: spaced(r, (2, 2, 4, 5))),
    "avgpool": (lambda r: nn.AvgPool2d(3, 2, 1), lambda r: r.standard_normal((2, 2, 5, 5))),
    "avgpool-exclude-pad": (lambda r: nn.AvgPool2d((3, 2), 1, 1, count_include_pad=False),
                            lambda r: r.standard_normal((1, 2, 4, 4))),
    "adaptive-avgpool": (lambda r: nn.AdaptiveAvgPool2d(1), lambda r: r.standard_normal((2, 3, 3, 4))),
    "maxpool-ceil": (lambda r: nn.MaxPool2d(3, 2, 1, ceil_mode=True), lambda r: spaced(r, (1, 2, 6, 6))),
    "avgpool-ceil": (lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True), lambda r: r.standard_normal((1, 2, 6, 6))),
    "adaptive-avgpool-10to3": (lambda r: nn.AdaptiveAvgPool2d(3), lambda r: r.standard_normal((1, 2, 10, 10))),
    "adaptive-maxpool-5to7": (lambda r: nn.AdaptiveMaxPool2d((7, None)),
                              lambda r: spaced(r, (1, 2, 5, 4))),
    "linear": (lambda r: nn.Linear(5, 3), lambda r: r.standard_normal((2, 5))),
    "linear-no-bias-batch1": (lambda r: nn.Linear(4, 2, bias=False), lambda r: r.standard_normal((1, 4))),
    "flatten": (lambda r: nn.Flatten(), lambda r: r.standard_normal((2, 3, 2, 2))),
    "dropout-p0": (lambda r: nn.Dropout(0.0), lambda r: r.standard_normal((2, 5))),
    "dropout-eval": (lambda r: nn.Dropout(0.5).eval(), lambda r: r.standard_normal((2, 5))),
    "dropout-fixed-mask": (lambda r: FixedMaskDropout(0.5), lambda r: r.standard_normal((2, 3, 2, 2))),
    "identity": (lambda r: nn.Identity(), lambda r: r.standard_normal((2, 3))),
    "sequential": (
        lambda r: nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1), _randomize(nn.BatchNorm2d(3), r), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1), nn.Dropout(0.0), nn.Flatten(), nn.Linear(12, 4), nn.Identity(),
        ),
        lambda r: r.standard_normal((2, 2, 4, 4)),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck_every_module(rng, case):
    make_module, make_input = CASES[case]
    module = make_module(rng).double()
    x = make_input(rng)
    report = check_module(module, x)
    assert report.ok, str(report)
    assert [e.name for e in report.errors] == ["input"] + [n for n, _ in module.named_parameters()]


@st.composite
def conv_module_config(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = tuple(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]) + draw(st.integers(0, 3)) for i in range(2))
    C, Fo, N = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    module = dict(in_channels=C, out_channels=Fo, kernel_size=k, stride=s, padding=p, dilation=d,
                  bias=draw(st.booleans()))
    return module, (N, C) + size


@FUZZ
@given(cfg=conv_module_config(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_gradcheck_fuzz(cfg, seed):
    kwargs, shape = cfg
    tr.manual_seed(seed)
    module = nn.Conv2d(**kwargs).double()
    report = check_module(module, np.random.default_rng(seed).standard_normal(shape))
    assert report.ok, str(report)


@FUZZ
@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 3), W=st.integers(1, 3),
       training=st.booleans(), affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_batchnorm2d_gradcheck_fuzz(N, C, H, W, training, affine, seed):
    rng = np.random.default_rng(seed)
    # two values per channel normalise to about -1 and +1 whatever x is: the input gradient is
    # then pure round-off (of order eps / var), so train on at least three
    if training and N * H * W < 3:
        N = 3
    module = _randomize(nn.BatchNorm2d(C, affine=affine).double(), rng)
    module.running_mean, module.running_var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    module.train(training)
    report = check_module(module, rng.standard_normal((N, C, H, W)) * 2)
    assert report.ok, str(report)


@st.composite
def pool_module(draw):
    kind = draw(st.sampled_from(["max", "avg", "avg-exclude-pad", "adaptive"]))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    size = tuple(max(1, k[i] - 2 * p[i]) + draw(st.integers(0, 3)) for i in range(2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + size
    module = {
        "max": lambda: nn.MaxPool2d(k, s, p),
        "avg": lambda: nn.AvgPool2d(k, s, p),
        "avg-exclude-pad": lambda: nn.AvgPool2d(k, s, p, count_include_pad=False),
        "adaptive": lambda: nn.AdaptiveAvgPool2d((1, 1)),
    }[kind]()
    return module, shape


@FUZZ
@given(cfg=pool_module(), seed=st.integers(0, 2**32 - 1))
def test_pooling_gradcheck_fuzz(cfg, seed):
    module, shape = cfg
    report = check_module(module, spaced(np.random.default_rng(seed), shape))
    assert report.ok, str(report)


@FUZZ
@given(kind=st.sampled_from(["linear", "flatten", "relu", "identity", "dropout-p0", "dropout-fixed-mask"]),
       N=st.integers(1, 3), features=st.integers(1, 6), out=st.integers(1, 4), bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_simple_modules_gradcheck_fuzz(kind, N, features, out, bias, seed):
    rng = np.random.default_rng(seed)
    tr.manual_seed(seed)
    module, x = {
        "linear": lambda: (nn.Linear(features, out, bias=bias), rng.standard_normal((N, features))),
        "flatten": lambda: (nn.Flatten(), rng.standard_normal((N, features, out, 1))),
        "relu": lambda: (nn.ReLU(), away_from_zero(rng, (N, features))),
        "identity": lambda: (nn.Identity(), rng.standard_normal((N, features))),
        "dropout-p0": lambda: (nn.Dropout(0.0), rng.standard_normal((N, features))),
        "dropout-fixed-mask": lambda: (FixedMaskDropout(0.3), rng.standard_normal((N, features))),
    }[kind]()
    report = check_module(module.double(), x)
    assert report.ok, str(report)


@FUZZ
@given(N=st.integers(1, 2), C=st.integers(1, 2), size=st.integers(2, 5), F=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_sequential_gradcheck_fuzz(N, C, size, F, seed):
    """A smooth chain (no kinks, no ties), so any random draw is an honest check."""
    rng = np.random.default_rng(seed)
    tr.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(C, F, 3, padding=1), _randomize(nn.BatchNorm2d(F), rng),
        nn.AvgPool2d(2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(F, 3),
    ).double()
    report = check_module(model, rng.standard_normal((max(N, 2), C, size, size)))
    assert report.ok, str(report)


# ---- PyTorch parity of whole modules, weights copied through state_dict -----------------------

def _torch_pair(ours_factory, theirs_factory, dtype):
    torch = pytest.importorskip("torch")
    ours = ours_factory().to(dtype)
    theirs = theirs_factory(torch)
    theirs = theirs.double() if dtype == np.float64 else theirs.float()
    # the same keys: loading with strict=True proves the state_dict names match PyTorch's
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()})
    return torch, ours, theirs


def _compare_step(torch, ours, theirs, x, dtype, rng):
    tol = PARITY_TOL[dtype]
    xt = torch.tensor(x, requires_grad=True)
    y = ours(x)
    yt = theirs(xt)
    assert y.dtype == dtype
    assert rel(y, yt.detach().numpy()) < tol
    dy = rng.standard_normal(y.shape).astype(dtype)
    ours.zero_grad()
    theirs.zero_grad()
    dx = ours.backward(dy)
    yt.backward(torch.tensor(dy))
    assert dx.dtype == dtype
    assert rel(dx, xt.grad.numpy()) < tol
    torch_params = dict(theirs.named_parameters())
    assert list(torch_params) == [n for n, _ in ours.named_parameters()]
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype, name
        assert rel(p.grad, torch_params[name].grad.numpy()) < tol, name
    for name, b in theirs.named_buffers():
        assert rel(ours.state_dict()[name], b.numpy()) < tol, name


def _chain(nn_):
    return nn_.Sequential(
        nn_.Conv2d(3, 4, 3, padding=1, bias=False), nn_.BatchNorm2d(4), nn_.ReLU(),
        nn_.MaxPool2d(3, 2, 1), nn_.Conv2d(4, 4, (1, 3), stride=(1, 2), dilation=2, padding=(0, 2)),
        nn_.AvgPool2d(2, 1, 1, count_include_pad=False), nn_.AdaptiveAvgPool2d(1), nn_.Flatten(),
        nn_.Dropout(0.0), nn_.Linear(4, 5), nn_.Identity(),
    )


MODULE_PAIRS = {
    "conv": (lambda nn_: nn_.Conv2d(3, 4, (3, 2), stride=2, padding=(1, 0), dilation=(1, 2)), (2, 3, 7, 6)),
    "conv-no-bias": (lambda nn_: nn_.Conv2d(3, 2, 7, stride=2, padding=3, bias=False), (1, 3, 8, 8)),
    "conv-depthwise": (lambda nn_: nn_.Conv2d(4, 8, 3, padding=1, groups=4), (2, 4, 5, 5)),
    "conv-valid": (lambda nn_: nn_.Conv2d(3, 2, 3, padding="valid", bias=False), (2, 3, 5, 6)),
    "batchnorm": (lambda nn_: nn_.BatchNorm2d(3), (2, 3, 4, 4)),
    "maxpool": (lambda nn_: nn_.MaxPool2d(3, 2, 1), (2, 3, 7, 7)),
    "avgpool": (lambda nn_: nn_.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 7)),
    "adaptive": (lambda nn_: nn_.AdaptiveAvgPool2d((1, 1)), (2, 3, 5, 4)),
    "adaptive-avg-10to3": (lambda nn_: nn_.AdaptiveAvgPool2d(3), (2, 3, 10, 10)),
    "adaptive-max-10to3": (lambda nn_: nn_.AdaptiveMaxPool2d((3, 4)), (2, 3, 10, 10)),
    "maxpool-ceil": (lambda nn_: nn_.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 6, 6)),
    "avgpool-ceil": (lambda nn_: nn_.AvgPool2d(3, 2, 1, True, False), (2, 3, 6, 7)),
    "linear": (lambda nn_: nn_.Linear(6, 4), (3, 6)),
    "relu": (lambda nn_: nn_.ReLU(inplace=False), (2, 3, 4, 4)),
    "flatten": (lambda nn_: nn_.Flatten(), (2, 3, 2, 2)),
    "sequential": (_chain, (2, 3, 8, 8)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(MODULE_PAIRS))
def test_torch_module_parity(rng, case, dtype):
    """Three training steps (running statistics move), then one in evaluation mode."""
    factory, shape = MODULE_PAIRS[case]
    torch, ours, theirs = _torch_pair(lambda: factory(nn), lambda t: factory(t.nn), dtype)
    for p in ours.parameters():  # leave BN's 1/0 init: random values exercise every term
        p.data = rng.standard_normal(p.shape).astype(dtype)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.tensor(dict(ours.named_parameters())[name].data))
    for _ in range(3):
        _compare_step(torch, ours, theirs, spaced(rng, shape, gap=0.37, dtype=dtype), dtype, rng)
    ours.eval()
    theirs.eval()
    _compare_step(torch, ours, theirs, spaced(rng, shape, gap=0.37, dtype=dtype), dtype, rng)


# ---- float32 in, float32 out ------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_float32_in_float32_out(rng, case, mode):
    make_module, make_input = CASES[case]
    module = make_module(rng).float().train(mode == "train")
    x = make_input(rng).astype(np.float32)
    y = module(x)
    assert y.dtype == np.float32
    assert module.backward(np.ones_like(y)).dtype == np.float32
    for name, p in module.named_parameters():
        assert p.data.dtype == p.grad.dtype == np.float32, name
    for name, b in module.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            assert b.dtype == np.float32, name


def test_default_dtype_is_float32_and_can_be_float64():
    assert nn.Conv2d(1, 1, 1).weight.dtype == np.float32
    assert nn.BatchNorm2d(2).running_var.dtype == np.float32
    tr.backend.set_default_dtype(np.float64)
    try:
        assert nn.Linear(2, 2).weight.dtype == np.float64
        assert nn.BatchNorm2d(2).weight.dtype == np.float64
    finally:
        tr.backend.set_default_dtype(np.float32)
    assert nn.Conv2d(1, 1, 1, dtype=np.float64).bias.dtype == np.float64


def test_batchnorm_momentum_none_is_a_cumulative_average(rng):
    bn = nn.BatchNorm2d(2, momentum=None).double()
    batches = [rng.standard_normal((2, 2, 3, 3)) + i for i in range(3)]
    for x in batches:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=(0, 2, 3)) for x in batches], axis=0),
                               rtol=1e-12)
    assert int(bn.num_batches_tracked) == 3


def test_batchnorm_eval_does_not_track(rng):
    bn = nn.BatchNorm2d(2).double().eval()
    bn(rng.standard_normal((2, 2, 3, 3)))
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, 0)


def test_conv2d_groups_and_padding_strings_are_checked():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(6\) and out_channels \(4\) must be "
                                         r"divisible by groups \(4\)"):
        nn.Conv2d(6, 4, 3, groups=4)
    with pytest.raises(ValueError, match="Conv2d: padding='same' is not supported for strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    conv = nn.Conv2d(4, 8, 3, padding="same", groups=2)
    assert conv.weight.shape == (8, 2, 3, 3)
    assert "padding='same'" in repr(conv) and "groups=2" in repr(conv)
