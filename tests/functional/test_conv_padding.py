"""conv2d with padding="same" / "valid" (conv_padding.py): gradients, naive, PyTorch parity."""
import warnings

import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet.gradcheck import check_op

from ._helpers import PARITY_TOL, rel, torch_forward_backward

GRID = [
    # x shape, weight shape, padding, dilation, groups
    pytest.param((2, 2, 5, 6), (3, 2, 3, 3), "same", 1, 1, id="same-odd"),
    pytest.param((2, 2, 5, 6), (3, 2, 2, 2), "same", 1, 1, id="same-even-asymmetric"),
    pytest.param((1, 2, 6, 5), (2, 2, 4, 3), "same", (1, 2), 1, id="same-even-by-odd-dilated"),
    pytest.param((1, 4, 6, 5), (4, 2, 2, 3), "same", 1, 2, id="same-even-grouped"),
    pytest.param((2, 2, 6, 5), (3, 2, 3, 2), "valid", 1, 1, id="valid"),
]


@pytest.mark.parametrize("x_shape, w_shape, padding, dilation, groups", GRID)
def test_gradcheck(rng, x_shape, w_shape, padding, dilation, groups):
    x, w, b = (rng.standard_normal(x_shape), rng.standard_normal(w_shape),
               rng.standard_normal(w_shape[0]))
    kwargs = dict(padding=padding, dilation=dilation, groups=groups)
    report = check_op(F.conv2d_forward, F.conv2d_backward, (x, w, b), kwargs,
                      names=["dx", "dw", "db"])
    assert report.ok, str(report)


@pytest.mark.parametrize("x_shape, w_shape, padding, dilation, groups", GRID)
def test_fast_equals_naive_and_same_keeps_the_size(rng, x_shape, w_shape, padding, dilation,
                                                   groups):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    kwargs = dict(padding=padding, dilation=dilation, groups=groups)
    y, cache = F.conv2d_forward(x, w, **kwargs)
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, **kwargs)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]
    assert rel(y, y_naive) < 1e-12
    dy = rng.standard_normal(y.shape)
    for fast, naive in zip(F.conv2d_backward(dy, cache)[:2],
                           F.conv2d_backward_naive(dy, cache_naive)[:2]):
        assert fast.shape == naive.shape and rel(fast, naive) < 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, padding, dilation, groups", GRID)
def test_torch_parity(rng, dtype, x_shape, w_shape, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    x, w, b = (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
               rng.standard_normal(w_shape[0]).astype(dtype))
    kwargs = dict(padding=padding, dilation=dilation, groups=groups)
    y, cache = F.conv2d_forward(x, w, b, **kwargs)
    with warnings.catch_warnings():
        # torch warns that an even 'same' kernel needs a padded copy of the input: so do we
        warnings.simplefilter("ignore", UserWarning)
        y_t, grads_t, dy = torch_forward_backward(
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kwargs), (x, w, b)
        )
    tol = PARITY_TOL[dtype]
    assert y.shape == y_t.shape and rel(y, y_t) < tol
    for name, ours, theirs in zip("xwb", F.conv2d_backward(dy, cache), grads_t):
        assert ours.dtype == dtype and ours.shape == theirs.shape, name
        assert rel(ours, theirs) < tol, name


def test_same_with_stride_is_refused(rng):
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for strided"):
        F.conv2d_forward(rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3)),
                         stride=2, padding="same")


def test_unknown_padding_string_is_refused(rng):
    with pytest.raises(ValueError, match="conv2d: padding must be an int, a pair, 'same' or "
                                         "'valid', got 'full'"):
        F.conv2d_forward(rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3)),
                         padding="full")
