"""Adaptive average and max pooling to any size: PyTorch's window bounds, gradient checks, naive
references, PyTorch parity (10->3, 224->13, 5->7 among them)."""
import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import PARITY_TOL, rel, spaced, torch_forward_backward

SIZES = [
    # input (N, C, H, W), output_size
    pytest.param((2, 3, 10, 10), 3, id="10to3"),
    pytest.param((1, 2, 5, 5), 7, id="5to7-upsampling"),
    pytest.param((2, 2, 7, 6), (3, 4), id="non-square"),
    pytest.param((1, 2, 6, 9), (None, 4), id="None-keeps-height"),
    pytest.param((2, 2, 4, 4), 1, id="1x1"),
    pytest.param((1, 1, 5, 3), (5, 3), id="identity"),
]
FORWARD = {"avg": F.adaptive_avgpool2d_forward, "max": F.adaptive_maxpool2d_forward}
BACKWARD = {"avg": F.adaptive_avgpool2d_backward, "max": F.adaptive_maxpool2d_backward}
NAIVE = {"avg": F.adaptive_avgpool2d_forward_naive, "max": F.adaptive_maxpool2d_forward_naive}


def test_window_bounds_are_pytorchs():
    """[floor(i*in/out), ceil((i+1)*in/out)): 10 -> 3 overlaps at rows 3 and 6; an end rounded
    down would give [0, 3) and miss row 3."""
    assert F.adaptive_window_bounds(10, 3) == [(0, 4), (3, 7), (6, 10)]
    assert F.adaptive_window_bounds(5, 7) == [(0, 1), (0, 2), (1, 3), (2, 3), (2, 4), (3, 5),
                                              (4, 5)]
    bounds = F.adaptive_window_bounds(224, 13)
    assert bounds[0] == (0, 18) and bounds[1] == (17, 35) and bounds[-1] == (206, 224)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("shape, output_size", SIZES)
def test_gradcheck(rng, kind, shape, output_size):
    x = spaced(rng, shape)  # no ties: max pooling is smooth around it
    report = check_op(FORWARD[kind], BACKWARD[kind], (x, output_size), names=["dx"])
    assert report.ok, str(report)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("shape, output_size", SIZES)
def test_fast_equals_naive(rng, kind, shape, output_size):
    x = rng.standard_normal(shape)
    y, cache = FORWARD[kind](x, output_size)
    y_naive, cache_naive = NAIVE[kind](x, output_size)
    assert y.shape == y_naive.shape and rel(y, y_naive) < 1e-14
    dy = rng.standard_normal(y.shape)
    dx, dx_naive = BACKWARD[kind](dy, cache), F.adaptive_pool2d_backward_naive(dy, cache_naive)
    assert rel(dx, dx_naive) < 1e-14


TORCH_SIZES = SIZES + [pytest.param((1, 2, 224, 224), 13, id="224to13")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("shape, output_size", TORCH_SIZES)
def test_torch_parity(rng, dtype, kind, shape, output_size):
    torch = pytest.importorskip("torch")
    fn = {"avg": torch.nn.functional.adaptive_avg_pool2d,
          "max": torch.nn.functional.adaptive_max_pool2d}[kind]
    x = spaced(rng, shape, gap=0.01, dtype=dtype)
    y, cache = FORWARD[kind](x, output_size)
    y_t, (dx_t,), dy = torch_forward_backward(lambda x: fn(x, output_size), (x,))
    dx = BACKWARD[kind](dy, cache)
    assert y.dtype == dx.dtype == dtype
    assert y.shape == y_t.shape and rel(y, y_t) < PARITY_TOL[dtype]
    assert rel(dx, dx_t) < PARITY_TOL[dtype]


def test_max_ties_and_nan_follow_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 1, 0, np.nan, 0], [1, 1, 0, 0, np.nan], [2, 0, 2, 2, 1]]).reshape(1, 1, 3, 5)
    y, cache = F.adaptive_maxpool2d_forward(x, (2, 3))
    y_t, (dx_t,), dy = torch_forward_backward(
        lambda x: torch.nn.functional.adaptive_max_pool2d(x, (2, 3)), (x,), dy=np.ones((1, 1, 2, 3)))
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(F.adaptive_maxpool2d_backward(dy, cache), dx_t)
    y_naive, cache_naive = F.adaptive_maxpool2d_forward_naive(x, (2, 3))
    np.testing.assert_array_equal(y_naive, y_t)
    np.testing.assert_array_equal(F.adaptive_pool2d_backward_naive(dy, cache_naive), dx_t)


@pytest.mark.parametrize("bad", [0, (2, -1), 1.5])
def test_bad_output_size(rng, bad):
    with pytest.raises(ValueError, match="adaptive_avgpool2d: output_size must be positive"):
        F.adaptive_avgpool2d_forward(rng.standard_normal((1, 1, 4, 4)), bad)


def test_wrong_rank(rng):
    with pytest.raises(ValueError, match=r"adaptive_maxpool2d: expected a 4-D input"):
        F.adaptive_maxpool2d_forward(rng.standard_normal((4, 4)), 2)
