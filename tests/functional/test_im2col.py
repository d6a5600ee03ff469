"""im2col / col2im: layout against an explicit loop, shapes, the adjoint identity, dtypes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyresnet import functional as F

from ._helpers import FUZZ, rel, window_geometry


def im2col_loops(x, kernel_size, stride, padding, dilation):
    """The documented layout written out element by element: row c*kh*kw + i*kw + j,
    column n*Ho*Wo + oh*Wo + ow holds x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.zeros((C * kh * kw, N * Ho * Wo), dtype=x.dtype)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(Ho):
                        for ow in range(Wo):
                            cols[c * kh * kw + i * kw + j, n * Ho * Wo + oh * Wo + ow] = xp[
                                n, c, oh * sh + i * dh, ow * sw + j * dw
                            ]
    return cols


GRID = [
    # kernel_size, stride, padding, dilation, (H, W)
    ((1, 1), (1, 1), (0, 0), (1, 1), (4, 5)),
    ((3, 3), (1, 1), (1, 1), (1, 1), (5, 5)),
    ((2, 3), (2, 1), (1, 0), (1, 1), (6, 5)),
    ((3, 2), (1, 2), (0, 2), (2, 1), (7, 4)),
    ((7, 7), (2, 2), (3, 3), (1, 1), (8, 8)),
    ((3, 3), (3, 2), (2, 1), (2, 2), (5, 6)),
]


@pytest.mark.parametrize("kernel_size, stride, padding, dilation, size", GRID)
def test_im2col_matches_explicit_loops_and_shape(rng, kernel_size, stride, padding, dilation, size):
    x = rng.standard_normal((2, 3) + size)
    cols = F.im2col(x, kernel_size, stride, padding, dilation)
    expected = im2col_loops(x, kernel_size, stride, padding, dilation)
    Ho, Wo = F.conv_output_shape(x.shape, kernel_size, stride, padding, dilation)
    assert cols.shape == (3 * kernel_size[0] * kernel_size[1], 2 * Ho * Wo)
    np.testing.assert_array_equal(cols, expected)


@FUZZ
@given(geometry=window_geometry(), N=st.integers(1, 2), C=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_col2im_is_the_adjoint_of_im2col(geometry, N, C, seed):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col's transpose, which is
    exactly what the convolution backward needs."""
    rng = np.random.default_rng(seed)
    args = (geometry["kernel_size"], geometry["stride"], geometry["padding"], geometry["dilation"])
    x = rng.standard_normal((N, C) + geometry["size"])
    cols = F.im2col(x, *args)
    c = rng.standard_normal(cols.shape)
    folded = F.col2im(c, x.shape, *args)
    assert folded.shape == x.shape
    left, right = float((cols * c).sum()), float((x * folded).sum())
    assert abs(left - right) <= 1e-12 * max(1.0, np.abs(cols * c).sum())
    np.testing.assert_array_equal(cols, im2col_loops(x, *args))


def test_col2im_sums_overlapping_windows():
    """Folding columns of ones counts how many windows cover each pixel."""
    x_shape = (1, 1, 4, 4)
    cols = np.ones((9, 4))  # 3x3 kernel, stride 1, no padding: 2x2 windows
    counts = F.col2im(cols, x_shape, 3)
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]], dtype=float)
    np.testing.assert_array_equal(counts[0, 0], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    cols = F.im2col(x, (3, 2), 2, 1, (1, 2))
    assert cols.dtype == dtype
    assert F.col2im(cols, x.shape, (3, 2), 2, 1, (1, 2)).dtype == dtype


def test_channel_major_input_gives_same_columns(rng):
    """The conv output is a transposed view; im2col must read it by value, not by memory order."""
    x = rng.standard_normal((3, 2, 5, 5))
    view = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(F.im2col(view, 3, 1, 1), F.im2col(x, 3, 1, 1))


def test_im2col_refuses_kernel_larger_than_padded_input(rng):
    with pytest.raises(ValueError, match=r"im2col.*kernel 5.*larger than the padded input height 2"):
        F.im2col(rng.standard_normal((1, 1, 2, 9)), 5, padding=1)


def test_im2col_refuses_wrong_rank(rng):
    with pytest.raises(ValueError, match=r"im2col: expected a 4-D input.*got shape \(3, 4, 4\)"):
        F.im2col(rng.standard_normal((3, 4, 4)), 3)


def test_col2im_refuses_columns_of_wrong_shape(rng):
    with pytest.raises(ValueError, match=r"col2im: expected cols of shape \(9, 4\).*got \(9, 5\)"):
        F.col2im(rng.standard_normal((9, 5)), (1, 1, 4, 4), 3)


@pytest.mark.parametrize("bad", [dict(stride=0), dict(padding=-1), dict(dilation=0)])
def test_window_arguments_are_validated(rng, bad):
    kwargs = dict(kernel_size=3, stride=1, padding=0, dilation=1) | bad
    with pytest.raises(ValueError, match="im2col: kernel_size, stride and dilation must be >= 1"):
        F.im2col(rng.standard_normal((1, 1, 5, 5)), **kwargs)


class TestTorchParity:
    """F.unfold/F.fold use the same (C*kh*kw) row order; ours puts the batch in the columns."""

    @pytest.mark.parametrize("kernel_size, stride, padding, dilation, size", GRID)
    def test_unfold_and_fold(self, rng, kernel_size, stride, padding, dilation, size):
        torch = pytest.importorskip("torch")
        x = rng.standard_normal((2, 3) + size)
        kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        cols = F.im2col(x, kernel_size, stride, padding, dilation)
        unfolded = torch.nn.functional.unfold(torch.from_numpy(x), **kw).numpy()  # (N, K, L)
        K, L = unfolded.shape[1:]
        np.testing.assert_array_equal(cols, unfolded.transpose(1, 0, 2).reshape(K, -1))
        c = rng.standard_normal(cols.shape)
        ours = F.col2im(c, x.shape, kernel_size, stride, padding, dilation)
        theirs = torch.nn.functional.fold(
            torch.from_numpy(np.ascontiguousarray(c.reshape(K, 2, L).transpose(1, 0, 2))),
            output_size=size, **kw,
        ).numpy()
        assert rel(ours, theirs) < 1e-12
