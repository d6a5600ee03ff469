"""Grouped conv2d (conv_grouped.py): gradient checks, fast against naive, PyTorch parity, errors."""
import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import PARITY_TOL, rel, torch_forward_backward

GRID = [
    # x shape, weight shape (F, C/g, kh, kw), stride, padding, dilation, groups, bias
    pytest.param((2, 4, 5, 5), (6, 2, 3, 3), 1, 1, 1, 2, True, id="g2-3x3"),
    pytest.param((2, 6, 7, 6), (6, 2, 3, 3), 2, 1, 1, 3, False, id="g3-stride2-resnext"),
    pytest.param((1, 4, 6, 5), (4, 1, 3, 2), (2, 1), (1, 0), (1, 2), 4, True, id="depthwise"),
    pytest.param((2, 4, 4, 4), (8, 2, 1, 1), 1, 0, 1, 2, False, id="g2-1x1"),
    pytest.param((1, 6, 5, 5), (3, 2, 2, 2), 1, 0, 2, 3, True, id="g3-dilated-1-out-each"),
]


def _inputs(rng, x_shape, w_shape, bias, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias", GRID)
def test_gradcheck(rng, x_shape, w_shape, stride, padding, dilation, groups, bias):
    x, w, b = _inputs(rng, x_shape, w_shape, bias)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    report = check_op(F.conv2d_forward, F.conv2d_backward, (x, w, b), geometry,
                      names=["dx", "dw", "db"])
    assert report.ok, str(report)
    assert len(report.errors) == (3 if bias else 2)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias", GRID)
def test_fast_equals_naive(rng, x_shape, w_shape, stride, padding, dilation, groups, bias):
    x, w, b = _inputs(rng, x_shape, w_shape, bias)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, b, **geometry)
    assert rel(y, y_naive) < 1e-12
    dy = rng.standard_normal(y.shape)
    for fast, naive in zip(F.conv2d_backward(dy, cache), F.conv2d_backward_naive(dy, cache_naive)):
        assert (fast is None) == (naive is None)
        if fast is not None:
            assert fast.shape == naive.shape and rel(fast, naive) < 1e-12


def test_groups_are_independent(rng):
    """Group 1's outputs do not depend on group 0's input channels, and vice versa."""
    x, w, _ = _inputs(rng, (1, 4, 5, 5), (4, 2, 3, 3), False)
    y, _ = F.conv2d_forward(x, w, padding=1, groups=2)
    x2 = x.copy()
    x2[:, :2] += 1.0
    y2, _ = F.conv2d_forward(x2, w, padding=1, groups=2)
    np.testing.assert_array_equal(y2[:, 2:], y[:, 2:])
    assert not np.allclose(y2[:, :2], y[:, :2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, bias", GRID)
def test_torch_parity(rng, dtype, x_shape, w_shape, stride, padding, dilation, groups, bias):
    torch = pytest.importorskip("torch")
    x, w, b = _inputs(rng, x_shape, w_shape, bias, dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    y_t, grads_t, dy = torch_forward_backward(
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **geometry), (x, w, b)
    )
    tol = PARITY_TOL[dtype]
    assert y.dtype == dtype and rel(y, y_t) < tol
    for name, ours, theirs in zip("xwb", F.conv2d_backward(dy, cache), grads_t):
        if theirs is None:
            assert ours is None
            continue
        assert ours.dtype == dtype, name
        assert rel(ours, theirs) < tol, name


def test_channels_not_divisible_by_groups(rng):
    with pytest.raises(ValueError, match=r"conv2d: out_channels 3 .* divisible by groups=2"):
        F.conv2d_forward(rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((3, 2, 3, 3)),
                         groups=2)


def test_wrong_channel_count_names_groups(rng):
    with pytest.raises(ValueError, match=r"conv2d: expected input with 4 channels .*groups=2.*"
                                         r"got shape \(1, 6, 5, 5\)"):
        F.conv2d_forward(rng.standard_normal((1, 6, 5, 5)), rng.standard_normal((4, 2, 3, 3)),
                         groups=2)


@pytest.mark.parametrize("groups", [0, -2, 1.5])
def test_bad_groups(rng, groups):
    with pytest.raises(ValueError, match="conv2d: groups must be a positive integer"):
        F.conv2d_forward(rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3)),
                         groups=groups)
