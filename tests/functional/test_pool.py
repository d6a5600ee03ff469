"""Max, average and global average pooling: gradient checks, fast against naive, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import FUZZ, PARITY_TOL, rel, spaced, torch_forward_backward, window_geometry

MAX_GRID = [
    # x shape, kernel_size, stride, padding, dilation
    pytest.param((2, 3, 4, 4), 2, 2, 0, 1, id="2x2-stride2"),
    pytest.param((1, 2, 7, 7), 3, 2, 1, 1, id="3x3-stride2-pad1-batch1"),
    pytest.param((2, 2, 8, 8), 3, 2, 1, 1, id="3x3-stride2-pad1-even"),
    pytest.param((2, 2, 5, 5), 3, 1, 1, 1, id="3x3-overlapping"),
    pytest.param((1, 3, 5, 6), (2, 3), (1, 2), (1, 1), 1, id="non-square"),
    pytest.param((2, 2, 6, 6), 2, 1, 1, 2, id="dilated"),
    pytest.param((2, 3, 3, 3), 1, 1, 0, 1, id="1x1"),
]

AVG_GRID = [
    pytest.param((2, 3, 4, 4), 2, 2, 0, id="2x2-stride2"),
    pytest.param((1, 2, 7, 7), 3, 2, 1, id="3x3-stride2-pad1-batch1"),
    pytest.param((2, 2, 5, 6), (3, 2), (1, 2), (1, 1), id="non-square-padded"),
    pytest.param((2, 2, 3, 3), 1, 1, 0, id="1x1"),
    pytest.param((1, 2, 8, 8), 7, 2, 3, id="7x7-stride2-pad3"),
]


@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", MAX_GRID)
def test_maxpool_gradcheck_grid(rng, shape, kernel_size, stride, padding, dilation):
    x = spaced(rng, shape)
    report = check_op(F.maxpool2d_forward, F.maxpool2d_backward,
                      (x, kernel_size, stride, padding, dilation), names=["dx"])
    assert report.ok, str(report)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape, kernel_size, stride, padding", AVG_GRID)
def test_avgpool_gradcheck_grid(rng, shape, kernel_size, stride, padding, count_include_pad):
    x = rng.standard_normal(shape)
    report = check_op(F.avgpool2d_forward, F.avgpool2d_backward,
                      (x, kernel_size, stride, padding, count_include_pad), names=["dx"])
    assert report.ok, str(report)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 1), (1, 1, 7, 7)])
def test_global_avgpool_gradcheck(rng, shape):
    report = check_op(F.global_avgpool2d_forward, F.global_avgpool2d_backward,
                      (rng.standard_normal(shape),), names=["dx"])
    assert report.ok, str(report)
    y, _ = F.global_avgpool2d_forward(np.ones(shape))
    assert y.shape == shape[:2] + (1, 1)


@st.composite
def pool_config(draw, dilation=True):
    g = draw(window_geometry(max_kernel=3, max_extra=3, dilation=dilation, half_kernel_padding=True))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + g["size"]
    return shape, g, draw(st.integers(0, 2**32 - 1))


@FUZZ
@given(cfg=pool_config())
def test_maxpool_gradcheck_fuzz(cfg):
    shape, g, seed = cfg
    x = spaced(np.random.default_rng(seed), shape)
    args = (x, g["kernel_size"], g["stride"], g["padding"], g["dilation"])
    # a dilated window that sees only padding outputs -inf (as PyTorch; tested below), which
    # finite differences cannot handle (-inf - -inf)
    assume(np.isfinite(F.maxpool2d_forward(*args)[0]).all())
    report = check_op(F.maxpool2d_forward, F.maxpool2d_backward, args)
    assert report.ok, str(report)


@FUZZ
@given(cfg=pool_config(dilation=False), count_include_pad=st.booleans())
def test_avgpool_gradcheck_fuzz(cfg, count_include_pad):
    shape, g, seed = cfg
    x = np.random.default_rng(seed).standard_normal(shape)
    report = check_op(F.avgpool2d_forward, F.avgpool2d_backward,
                      (x, g["kernel_size"], g["stride"], g["padding"], count_include_pad))
    assert report.ok, str(report)


@FUZZ
@given(cfg=pool_config(), ties=st.booleans())
def test_maxpool_fast_equals_naive(cfg, ties):
    """Equal forward and backward, also with ties (values from {0, 1, 2}): both give each
    window's gradient to its first maximum in scan order."""
    shape, g, seed = cfg
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else spaced(rng, shape)
    args = (g["kernel_size"], g["stride"], g["padding"], g["dilation"])
    y, cache = F.maxpool2d_forward(x, *args)
    y_naive, cache_naive = F.maxpool2d_forward_naive(x, *args)
    np.testing.assert_array_equal(y, y_naive)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(F.maxpool2d_backward(dy, cache),
                               F.maxpool2d_backward_naive(dy, cache_naive), rtol=1e-14, atol=1e-14)


def test_maxpool_naive_on_a_hand_example():
    x = np.array([[1.0, 5, 2], [4, 3, 9], [0, 8, 6]]).reshape(1, 1, 3, 3)
    y, cache = F.maxpool2d_forward_naive(x, 2, 1)
    np.testing.assert_array_equal(y[0, 0], [[5, 9], [8, 9]])
    dx = F.maxpool2d_backward_naive(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 1, 0], [0, 0, 2], [0, 1, 0]])


def test_maxpool_padding_never_wins(rng):
    x = -1 - rng.uniform(size=(1, 1, 3, 3))  # all negative: zero padding would win
    y, _ = F.maxpool2d_forward(x, 3, 1, 1)
    assert (y < -1).all()


def test_maxpool_gradient_goes_to_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    y, cache = F.maxpool2d_forward(x, 2)
    dx = F.maxpool2d_backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_maxpool_window_of_padding_only_gives_minus_inf_and_no_gradient():
    """Kernel 2, dilation 2, padding 1 over a 1-pixel input: both taps fall in the padding.
    PyTorch allows it (padding is at most half the dilated kernel) and returns -inf."""
    y, cache = F.maxpool2d_forward(np.ones((1, 1, 1, 3)), (2, 1), 1, (1, 0), (2, 1))
    np.testing.assert_array_equal(y, np.full((1, 1, 1, 3), -np.inf))
    np.testing.assert_array_equal(F.maxpool2d_backward(np.ones_like(y), cache), 0)


def test_avgpool_count_include_pad_divisors():
    x = np.ones((1, 1, 2, 2))
    with_pad, _ = F.avgpool2d_forward(x, 3, 1, 1, count_include_pad=True)
    without, _ = F.avgpool2d_forward(x, 3, 1, 1, count_include_pad=False)
    np.testing.assert_allclose(with_pad[0, 0], np.full((2, 2), 4 / 9))
    np.testing.assert_array_equal(without[0, 0], np.ones((2, 2)))


class TestTorchParity:
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    @pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", MAX_GRID)
    def test_max_pool2d(self, rng, dtype, shape, kernel_size, stride, padding, dilation):
        torch = pytest.importorskip("torch")
        x = spaced(rng, shape, dtype=dtype)
        y, cache = F.maxpool2d_forward(x, kernel_size, stride, padding, dilation)
        y_t, (dx_t,), dy = torch_forward_backward(
            lambda x: torch.nn.functional.max_pool2d(x, kernel_size, stride, padding, dilation), (x,))
        dx = F.maxpool2d_backward(dy, cache)
        assert y.dtype == dx.dtype == dtype
        assert rel(y, y_t) < PARITY_TOL[dtype]
        assert rel(dx, dx_t) < PARITY_TOL[dtype]

    def test_max_pool2d_window_of_padding_only(self):
        """Forward only: for such windows torch 2.x records indices past the input's end, and its
        backward then writes out of bounds (heap corruption), so it is no oracle for the gradient."""
        torch = pytest.importorskip("torch")
        x = np.arange(3.0).reshape(1, 1, 1, 3)
        args = ((2, 2), 1, 1, 2)
        y, _ = F.maxpool2d_forward(x, *args)
        with torch.no_grad():
            np.testing.assert_array_equal(y, torch.nn.functional.max_pool2d(torch.from_numpy(x), *args))

    def test_max_pool2d_ties_and_nan(self):
        torch = pytest.importorskip("torch")
        x = np.array([[1.0, 1, 0, np.nan], [1, 1, 0, 0], [2, 0, 2, 2], [0, 2, 2, 2]]).reshape(1, 1, 4, 4)
        y, cache = F.maxpool2d_forward(x, 2, 2)
        y_t, (dx_t,), dy = torch_forward_backward(
            lambda x: torch.nn.functional.max_pool2d(x, 2, 2), (x,), dy=np.ones((1, 1, 2, 2)))
        np.testing.assert_array_equal(y, y_t)
        np.testing.assert_array_equal(F.maxpool2d_backward(dy, cache), dx_t)

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    @pytest.mark.parametrize("count_include_pad", [True, False])
    @pytest.mark.parametrize("shape, kernel_size, stride, padding", AVG_GRID)
    def test_avg_pool2d(self, rng, dtype, shape, kernel_size, stride, padding, count_include_pad):
        torch = pytest.importorskip("torch")
        x = rng.standard_normal(shape).astype(dtype)
        y, cache = F.avgpool2d_forward(x, kernel_size, stride, padding, count_include_pad)
        y_t, (dx_t,), dy = torch_forward_backward(
            lambda x: torch.nn.functional.avg_pool2d(
                x, kernel_size, stride, padding, count_include_pad=count_include_pad), (x,))
        dx = F.avgpool2d_backward(dy, cache)
        assert y.dtype == dx.dtype == dtype
        assert rel(y, y_t) < PARITY_TOL[dtype]
        assert rel(dx, dx_t) < PARITY_TOL[dtype]

    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_adaptive_avg_pool2d(self, rng, dtype):
        torch = pytest.importorskip("torch")
        x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
        y, cache = F.global_avgpool2d_forward(x)
        y_t, (dx_t,), dy = torch_forward_backward(
            lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1), (x,))
        dx = F.global_avgpool2d_backward(dy, cache)
        assert y.dtype == dx.dtype == dtype
        assert rel(y, y_t) < PARITY_TOL[dtype]
        assert rel(dx, dx_t) < PARITY_TOL[dtype]


@pytest.mark.parametrize("op, args", [
    (F.maxpool2d_forward, (3, 2, 1)),
    (F.maxpool2d_forward_naive, (3, 2, 1)),
    (F.avgpool2d_forward, (3, 2, 1)),
    (F.global_avgpool2d_forward, ()),
])
def test_float32_in_float32_out(rng, op, args):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y, cache = op(x, *args)
    assert y.dtype == np.float32
    backward = {
        F.maxpool2d_forward: F.maxpool2d_backward,
        F.maxpool2d_forward_naive: F.maxpool2d_backward_naive,
        F.avgpool2d_forward: F.avgpool2d_backward,
        F.global_avgpool2d_forward: F.global_avgpool2d_backward,
    }[op]
    assert backward(np.ones_like(y), cache).dtype == np.float32


@pytest.mark.parametrize("op, name", [(F.maxpool2d_forward, "maxpool2d"), (F.avgpool2d_forward, "avgpool2d")])
def test_padding_over_half_the_kernel_is_refused(rng, op, name):
    with pytest.raises(ValueError, match=rf"{name}: padding \(2, 2\) must be at most half the kernel"):
        op(rng.standard_normal((1, 1, 6, 6)), 3, 1, 2)


@pytest.mark.parametrize("op, name", [(F.maxpool2d_forward, "maxpool2d"), (F.avgpool2d_forward, "avgpool2d")])
def test_kernel_larger_than_input_is_refused(rng, op, name):
    with pytest.raises(ValueError, match=rf"{name}: kernel 3 .*larger than the padded input height 2"):
        op(rng.standard_normal((1, 1, 2, 6)), 3)


@pytest.mark.parametrize("op, name", [
    (F.maxpool2d_forward, "maxpool2d"), (F.avgpool2d_forward, "avgpool2d"),
    (lambda x, k: F.global_avgpool2d_forward(x), "global_avgpool2d"),
])
def test_wrong_rank_is_refused(rng, op, name):
    with pytest.raises(ValueError, match=rf"{name}: expected a 4-D input .*got shape \(6, 6\)"):
        op(rng.standard_normal((6, 6)), 2)


# ---- ceil_mode ------------------------------------------------------------------------------
CEIL_GRID = [
    # x shape, kernel_size, stride, padding, dilation
    pytest.param((2, 2, 6, 6), 3, 2, 1, 1, id="last-window-past-the-padding"),
    pytest.param((1, 2, 5, 5), 2, 2, 1, 1, id="window-starting-in-right-padding-dropped"),
    pytest.param((2, 3, 7, 8), 2, 2, 0, 1, id="odd-input-2x2"),
    pytest.param((1, 2, 8, 7), (3, 2), (3, 2), (1, 0), 1, id="non-square"),
    pytest.param((2, 2, 9, 9), 3, 2, 0, 1, id="googlenet-3x3-stride2"),
]
CEIL_MAX_GRID = CEIL_GRID + [pytest.param((1, 2, 8, 7), 2, 3, 1, 2, id="dilated")]


@pytest.mark.parametrize("shape, kernel_size, stride, padding, expected", [
    ((1, 1, 6, 6), 3, 2, 1, (4, 4)),  # floor gives 3: the 4th window starts on the last element
    ((1, 1, 5, 5), 2, 2, 1, (3, 3)),  # rounding up gives 4, whose window starts in the padding
    ((1, 1, 7, 8), 2, 2, 0, (4, 4)),
])
def test_ceil_mode_output_size_is_pytorchs(rng, shape, kernel_size, stride, padding, expected):
    x = rng.standard_normal(shape)
    for op in (F.maxpool2d_forward, F.maxpool2d_forward_naive):
        assert op(x, kernel_size, stride, padding, ceil_mode=True)[0].shape[2:] == expected
    assert F.avgpool2d_forward(x, kernel_size, stride, padding, ceil_mode=True)[0].shape[2:] \
        == expected


@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", CEIL_MAX_GRID)
def test_ceil_mode_maxpool_gradcheck_and_naive(rng, shape, kernel_size, stride, padding, dilation):
    x = spaced(rng, shape)
    args = (x, kernel_size, stride, padding, dilation, True)
    report = check_op(F.maxpool2d_forward, F.maxpool2d_backward, args, names=["dx"])
    assert report.ok, str(report)
    (y, cache), (y_naive, cache_naive) = F.maxpool2d_forward(*args), F.maxpool2d_forward_naive(*args)
    np.testing.assert_array_equal(y, y_naive)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(F.maxpool2d_backward(dy, cache),
                                  F.maxpool2d_backward_naive(dy, cache_naive))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", CEIL_GRID)
def test_ceil_mode_avgpool_gradcheck(rng, shape, kernel_size, stride, padding, dilation,
                                     count_include_pad):
    x = rng.standard_normal(shape)
    report = check_op(F.avgpool2d_forward, F.avgpool2d_backward,
                      (x, kernel_size, stride, padding, count_include_pad, True), names=["dx"])
    assert report.ok, str(report)


def test_ceil_mode_avgpool_divisors():
    """The window past the padding divides by its part inside the padded input (PyTorch)."""
    x = np.ones((1, 1, 6, 6))
    with_pad, _ = F.avgpool2d_forward(x, 3, 2, 1, count_include_pad=True, ceil_mode=True)
    # last row of windows: padded rows 6, 7 (row 8 is past the padding), of which row 6 is real;
    # with 3 real columns: 3 ones over 2 x 3 elements
    np.testing.assert_allclose(with_pad[0, 0, -1, 1], 3 / 6)
    np.testing.assert_allclose(with_pad[0, 0, 1, 1], 1.0)
    without, _ = F.avgpool2d_forward(x, 3, 2, 1, count_include_pad=False, ceil_mode=True)
    np.testing.assert_array_equal(without, 1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", CEIL_MAX_GRID)
def test_ceil_mode_max_pool2d_torch_parity(rng, dtype, shape, kernel_size, stride, padding,
                                           dilation):
    torch = pytest.importorskip("torch")
    x = spaced(rng, shape, dtype=dtype)
    y, cache = F.maxpool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode=True)
    y_t, (dx_t,), dy = torch_forward_backward(lambda x: torch.nn.functional.max_pool2d(
        x, kernel_size, stride, padding, dilation, ceil_mode=True), (x,))
    assert y.shape == y_t.shape and rel(y, y_t) < PARITY_TOL[dtype]
    assert rel(F.maxpool2d_backward(dy, cache), dx_t) < PARITY_TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", CEIL_GRID)
def test_ceil_mode_avg_pool2d_torch_parity(rng, dtype, shape, kernel_size, stride, padding,
                                           dilation, count_include_pad):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape).astype(dtype)
    y, cache = F.avgpool2d_forward(x, kernel_size, stride, padding, count_include_pad,
                                   ceil_mode=True)
    y_t, (dx_t,), dy = torch_forward_backward(lambda x: torch.nn.functional.avg_pool2d(
        x, kernel_size, stride, padding, ceil_mode=True, count_include_pad=count_include_pad), (x,))
    assert y.shape == y_t.shape and rel(y, y_t) < PARITY_TOL[dtype]
    assert rel(F.avgpool2d_backward(dy, cache), dx_t) < PARITY_TOL[dtype]
