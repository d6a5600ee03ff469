"""conv2d: gradient checks, fast against naive, PyTorch parity, dtypes and bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, rel, torch_forward_backward, window_geometry

GRID = [
    # x shape, (F, kh, kw), stride, padding, dilation, bias
    pytest.param((2, 3, 4, 4), (2, 1, 1), 1, 0, 1, True, id="1x1"),
    pytest.param((2, 2, 5, 5), (3, 3, 3), 1, 1, 1, True, id="3x3-same"),
    pytest.param((1, 2, 8, 8), (2, 7, 7), 2, 3, 1, True, id="7x7-stride2-pad3-batch1"),
    pytest.param((2, 2, 6, 5), (2, 2, 3), (2, 1), (1, 0), 1, True, id="non-square"),
    pytest.param((1, 2, 7, 6), (2, 3, 2), 1, (2, 1), (2, 3), True, id="dilated"),
    pytest.param((2, 3, 5, 5), (2, 3, 3), 2, 1, 1, False, id="3x3-stride2-no-bias"),
]


def _conv_inputs(rng, x_shape, w_shape, bias, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((w_shape[0], x_shape[1]) + tuple(w_shape[1:])).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, bias", GRID)
def test_gradcheck_grid(rng, x_shape, w_shape, stride, padding, dilation, bias):
    x, w, b = _conv_inputs(rng, x_shape, w_shape, bias)
    report = check_op(
        F.conv2d_forward, F.conv2d_backward, (x, w, b),
        dict(stride=stride, padding=padding, dilation=dilation), names=["dx", "dw", "db"],
    )
    assert report.ok, str(report)
    assert len(report.errors) == (3 if bias else 2)


@st.composite
def conv_config(draw):
    g = draw(window_geometry(max_kernel=3, max_extra=3))
    N, C, Fo = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(
        x_shape=(N, C) + g["size"], w_shape=(Fo, C) + g["kernel_size"], stride=g["stride"],
        padding=g["padding"], dilation=g["dilation"], bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _draw_inputs(cfg, dtype=np.float64):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal(cfg["x_shape"]).astype(dtype)
    w = rng.standard_normal(cfg["w_shape"]).astype(dtype)
    b = rng.standard_normal(cfg["w_shape"][0]).astype(dtype) if cfg["bias"] else None
    return x, w, b, dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])


@FUZZ
@given(cfg=conv_config())
def test_gradcheck_fuzz(cfg):
    x, w, b, geometry = _draw_inputs(cfg)
    report = check_op(F.conv2d_forward, F.conv2d_backward, (x, w, b), geometry,
                      names=["dx", "dw", "db"])
    assert report.ok, str(report)


@FUZZ
@given(cfg=conv_config())
def test_fast_equals_naive(cfg):
    x, w, b, geometry = _draw_inputs(cfg)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, b, **geometry)
    assert y.shape == y_naive.shape
    assert rel(y, y_naive) < 1e-12
    dy = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape)
    for fast, naive in zip(F.conv2d_backward(dy, cache), F.conv2d_backward_naive(dy, cache_naive)):
        if fast is None:
            assert naive is None and b is None
            continue
        assert fast.shape == naive.shape
        assert rel(fast, naive) < 1e-12


def test_naive_conv_on_a_hand_example():
    """The oracle itself, checked by hand: a 2x2 box filter over a 3x3 ramp, plus bias."""
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    y, _ = F.conv2d_forward_naive(x, w, np.array([0.5]))
    np.testing.assert_array_equal(y[0, 0], [[8.5, 12.5], [20.5, 24.5]])
    y_fast, _ = F.conv2d_forward(x, w, np.array([0.5]))
    np.testing.assert_array_equal(y_fast, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, bias", GRID)
def test_torch_parity(rng, dtype, x_shape, w_shape, stride, padding, dilation, bias):
    torch = pytest.importorskip("torch")
    x, w, b = _conv_inputs(rng, x_shape, w_shape, bias, dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    y_t, grads_t, dy = torch_forward_backward(
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **geometry), (x, w, b)
    )
    tol = PARITY_TOL[dtype]
    assert rel(y, y_t) < tol
    for name, ours, theirs in zip("xwb", F.conv2d_backward(dy, cache), grads_t):
        if theirs is None:
            assert ours is None
            continue
        assert ours.dtype == dtype, name
        assert rel(ours, theirs) < tol, name


def test_float32_in_float32_out(rng):
    x, w, b = _conv_inputs(rng, (2, 3, 6, 6), (4, 3, 3), True, np.float32)
    y, cache = F.conv2d_forward(x, w, b, stride=2, padding=1)
    assert y.dtype == np.float32
    dx, dw, db = F.conv2d_backward(np.ones_like(y), cache)
    assert (dx.dtype, dw.dtype, db.dtype) == (np.float32,) * 3
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, b, stride=2, padding=1)
    assert y_naive.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.conv2d_backward_naive(np.ones_like(y), cache_naive))


@pytest.mark.parametrize("which", ["weight", "bias", "input"])
def test_mixed_precision_is_refused(rng, which):
    x, w, b = _conv_inputs(rng, (1, 2, 4, 4), (2, 3, 3), True, np.float32)
    if which == "input":
        x = x.astype(np.float64)
    elif which == "weight":
        w = w.astype(np.float64)
    else:
        b = b.astype(np.float64)
    with pytest.raises(TypeError, match=rf"conv2d: .*{which}=float64"):
        F.conv2d_forward(x, w, b)


def test_wrong_rank(rng):
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D input \(N, C, H, W\), got shape \(3, 8, 8\)"):
        F.conv2d_forward(rng.standard_normal((3, 8, 8)), rng.standard_normal((2, 3, 3, 3)))


def test_wrong_channel_count(rng):
    with pytest.raises(ValueError, match=r"conv2d: expected input with 3 channels.*got shape \(1, 4, 8, 8\)"):
        F.conv2d_forward(rng.standard_normal((1, 4, 8, 8)), rng.standard_normal((2, 3, 3, 3)))


def test_kernel_larger_than_padded_input(rng):
    with pytest.raises(ValueError, match=r"conv2d: kernel 7 .*larger than the padded input width 4 \+ 2\*1 = 6"):
        F.conv2d_forward(rng.standard_normal((1, 1, 9, 4)), rng.standard_normal((1, 1, 1, 7)), padding=1)


def test_wrong_bias_shape(rng):
    with pytest.raises(ValueError, match=r"conv2d: expected bias of shape \(2,\), got \(3,\)"):
        F.conv2d_forward(rng.standard_normal((1, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3)),
                         rng.standard_normal(3))


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="conv2d: expected a float32 or float64 input, got dtype int64"):
        F.conv2d_forward(np.ones((1, 1, 3, 3), dtype=np.int64), np.ones((1, 1, 3, 3)))
