"""Every fast path of the functional ops against the naive loop references and the generic path.

The fast paths (see docs/performance.md): conv2d's 1x1 convolutions as a plain matrix product
(strided ones slicing first), its input gradient as a full convolution for stride 1, the im2col
recompute switch and the reused column buffer, padded column rows, dw's product with the taller
operand first, the unfolding and products block by block of images on several threads
(conv_blocked.py, parallel.py); max pooling over stride-phase planes with one scatter-add backward; batch norm on the channel-major (C, N*H*W) view.  Each is checked in float64
to round-off against the naive reference, by gradient checks where the path is new, in float32 for
dtype, and on inputs of both memory orders (plain NCHW, and the channel-major order the ops return).
"""
import numpy as np
import pytest

from tinyresnet import functional as F
from tinyresnet.functional import conv as conv_module
from tinyresnet.functional import conv_blocked, parallel
from tinyresnet.gradcheck import check_op

from ._helpers import rel, spaced

TIGHT = 1e-12  # float64, norm-wise relative


@pytest.fixture(params=["one-thread", "three-threads", "whole-batch"])
def split(request, monkeypatch):
    """How conv2d's work is split (parallel.py, conv_blocked.py): all in the calling thread;
    over three threads with every pass split however small and one image per block (so a
    thread runs several blocks, and N=2 leaves a thread without images); or three threads with
    the whole batch unfolded at once, as the formulas read."""
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(conv_blocked, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv_blocked, "WEIGHT_FACTOR", 0)
    previous = F.set_num_threads(1 if request.param == "one-thread" else 3)
    blocked = F.set_blocked_im2col(request.param != "whole-batch")
    yield request.param
    F.set_num_threads(previous)
    F.set_blocked_im2col(blocked)


@pytest.fixture(params=[True, False], ids=["recompute", "cache-columns"])
def recompute(request):
    previous = F.set_im2col_recompute(request.param)
    yield request.param
    F.set_im2col_recompute(previous)


def channel_major(a):
    """The same values with (C, N, H, W) memory, as conv2d, max-pool and batch norm return them."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def _conv_case(rng, x_shape, fo, k, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((fo, x_shape[1]) + k).astype(dtype)
    return x, w, rng.standard_normal(fo).astype(dtype)


CONV_PATHS = [
    # x shape, F, kernel, stride, padding, dilation: which fast path it takes
    pytest.param((2, 3, 5, 6), 4, (1, 1), 1, 0, 1, id="1x1-matmul"),
    pytest.param((2, 3, 7, 6), 4, (1, 1), 2, 0, 1, id="1x1-stride2-slice-first"),
    pytest.param((2, 3, 7, 8), 2, (1, 1), (3, 2), 0, 1, id="1x1-stride3x2"),
    pytest.param((2, 3, 5, 5), 2, (1, 1), 1, 1, 1, id="1x1-padded-generic"),
    pytest.param((2, 4, 6, 5), 3, (3, 3), 1, 1, 1, id="3x3-full-conv-dx-dw"),
    pytest.param((1, 3, 7, 7), 3, (3, 2), 1, (0, 1), (2, 1), id="dilated-full-conv-dx-dw"),
    pytest.param((2, 3, 6, 5), 4, (3, 3), 1, 1, 1, id="3x3-widening-col2im"),
    pytest.param((2, 2, 5, 5), 2, (3, 3), 1, (2, 0), 1, id="over-padded-col2im"),
    pytest.param((2, 3, 9, 8), 4, (3, 3), 2, 1, 1, id="3x3-stride2-col2im"),
    pytest.param((1, 3, 12, 11), 2, (7, 7), 2, 3, 1, id="7x7-stride2-stem"),
]


@pytest.mark.parametrize("memory", ["nchw", "channel-major"])
@pytest.mark.parametrize("x_shape, fo, k, stride, padding, dilation", CONV_PATHS)
def test_conv_paths_equal_naive(rng, recompute, split, memory, x_shape, fo, k, stride, padding, dilation):
    x, w, b = _conv_case(rng, x_shape, fo, k)
    if memory == "channel-major":
        x = channel_major(x)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, b, **geometry)
    assert rel(y, y_naive) < TIGHT
    dy = rng.standard_normal(y.shape)
    if memory == "channel-major":
        dy = channel_major(dy)
    for name, fast, naive in zip("xwb", F.conv2d_backward(dy, cache),
                                 F.conv2d_backward_naive(dy, cache_naive)):
        assert fast.shape == naive.shape, name
        assert rel(fast, naive) < TIGHT, name


@pytest.mark.parametrize("x_shape, fo, k, stride, padding, dilation",
                         CONV_PATHS[:3] + CONV_PATHS[4:6])
def test_conv_paths_gradcheck(rng, recompute, x_shape, fo, k, stride, padding, dilation):
    x, w, b = _conv_case(rng, x_shape, fo, k)
    report = check_op(F.conv2d_forward, F.conv2d_backward, (x, w, b),
                      dict(stride=stride, padding=padding, dilation=dilation),
                      names=["dx", "dw", "db"])
    assert report.ok, str(report)


def test_recompute_switch_gives_identical_results(rng):
    """Same products on the same columns: keeping or recomputing them changes no bit."""
    x, w, b = _conv_case(rng, (2, 3, 6, 6), 4, (3, 3))
    dy = rng.standard_normal((2, 4, 3, 3))
    results = {}
    for setting in (True, False):
        previous = F.set_im2col_recompute(setting)
        try:
            y, cache = F.conv2d_forward(x, w, b, stride=2, padding=1)
            results[setting] = (y,) + F.conv2d_backward(dy, cache)
        finally:
            F.set_im2col_recompute(previous)
    for kept, recomputed in zip(results[False], results[True]):
        np.testing.assert_array_equal(kept, recomputed)


def test_recompute_switch_decides_what_the_cache_holds(rng):
    x, w, b = _conv_case(rng, (2, 3, 6, 6), 4, (3, 3))
    previous = F.set_im2col_recompute(True)
    try:
        assert F.set_im2col_recompute(True) is True
        _, cache = F.conv2d_forward(x, w, b, padding=1)
        assert cache[0] is x  # the input, not its 9x larger columns
        F.set_im2col_recompute(False)
        _, cache = F.conv2d_forward(x, w, b, padding=1)
        assert cache[0].shape == (3 * 9, 2 * 6 * 6)
    finally:
        F.set_im2col_recompute(previous)
    assert conv_module._recompute is previous


def test_reused_column_buffer_never_leaks_between_layers(rng, recompute):
    """Two convolutions of different shapes forward, then backward in reverse order, as a network
    runs them: the shared scratch buffer must not carry one layer's columns into the other."""
    x1, w1, b1 = _conv_case(rng, (2, 3, 8, 8), 4, (3, 3))
    w2 = rng.standard_normal((5, 4, 3, 3))
    y1, c1 = F.conv2d_forward(x1, w1, b1, padding=1)
    y2, c2 = F.conv2d_forward(y1, w2, None, stride=2, padding=1)
    dy2 = rng.standard_normal(y2.shape)
    dy1, dw2, _ = F.conv2d_backward(dy2, c2)
    dx1, dw1, db1 = F.conv2d_backward(dy1, c1)
    r1, n1 = F.conv2d_forward_naive(x1, w1, b1, padding=1)
    r2, n2 = F.conv2d_forward_naive(r1, w2, None, stride=2, padding=1)
    ndy1, ndw2, _ = F.conv2d_backward_naive(dy2, n2)
    ndx1, ndw1, ndb1 = F.conv2d_backward_naive(ndy1, n1)
    for fast, naive in [(y2, r2), (dw2, ndw2), (dx1, ndx1), (dw1, ndw1), (db1, ndb1)]:
        assert rel(fast, naive) < TIGHT


@pytest.mark.parametrize("x_shape, fo, k, stride, padding, dilation", CONV_PATHS)
def test_conv_paths_float32(rng, recompute, x_shape, fo, k, stride, padding, dilation):
    x, w, b = _conv_case(rng, x_shape, fo, k, dtype=np.float32)
    y, cache = F.conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation)
    grads = F.conv2d_backward(np.ones_like(y), cache)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


def test_im2col_into_a_given_buffer(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    out = np.full((27, 2 * 3 * 3), np.nan)
    cols = F.im2col(x, 3, 2, 1, out=out)
    assert cols is out
    np.testing.assert_array_equal(cols, F.im2col(x, 3, 2, 1))
    with pytest.raises(ValueError, match=r"im2col: out must be an array of shape \(27, 18\) "
                                         r"with contiguous rows, got shape \(27, 18\) and strides"):
        F.im2col(x, 3, 2, 1, out=np.empty((18, 27)).T)
    wide = np.full((27, 2 * 3 * 3 + 5), np.nan)  # rows further apart than they are long
    assert F.im2col(x, 3, 2, 1, out=wide[:, :18]).base is not None
    np.testing.assert_array_equal(wide[:, :18], F.im2col(x, 3, 2, 1))
    assert np.isnan(wide[:, 18:]).all()


# ---- padded column rows -----------------------------------------------------------------------
@pytest.fixture(params=[True, False], ids=["padded-rows", "plain-rows"])
def column_padding(request):
    previous = F.set_column_padding(request.param)
    yield request.param
    F.set_column_padding(previous)


def test_column_rows_are_padded_only_off_4k_multiples(column_padding):
    from tinyresnet.functional.im2col import _columns

    for dtype in (np.float32, np.float64):
        x = np.zeros(1, dtype)
        aliased = _columns(x, 3, 4096 // x.itemsize * 2)  # rows of 8 KiB
        assert aliased.shape == (3, 4096 // x.itemsize * 2)
        assert (aliased.strides[0] == 8192 + 1024) is column_padding
        assert aliased.strides[1] == x.itemsize
        plain = _columns(x, 3, 1000, scratch=False)
        assert plain.strides == (1000 * x.itemsize, x.itemsize)


@pytest.mark.parametrize("x_shape, fo, stride", [
    pytest.param((1, 2, 32, 32), 2, 1, id="stride1-full-conv"),
    pytest.param((1, 3, 32, 32), 4, 1, id="widening-col2im"),
    pytest.param((4, 2, 32, 32), 3, 2, id="stride2-col2im"),
])
@pytest.mark.parametrize("dtype, tol", [(np.float64, TIGHT), (np.float32, 1e-5)])
def test_conv_on_padded_columns_equals_naive(rng, column_padding, x_shape, fo, stride, dtype, tol):
    """N*Ho*Wo = 1024: rows of columns (and of dy's) span 4 or 8 KiB, the padded layout."""
    x, w, b = _conv_case(rng, x_shape, fo, (3, 3), dtype)
    x = channel_major(x)
    y, cache = F.conv2d_forward(x, w, b, stride=stride, padding=1)
    y_naive, cache_naive = F.conv2d_forward_naive(x, w, b, stride=stride, padding=1)
    assert y.dtype == dtype and rel(y, y_naive) < tol
    dy = channel_major(rng.standard_normal(y.shape).astype(dtype))
    for name, fast, naive in zip("xwb", F.conv2d_backward(dy, cache),
                                 F.conv2d_backward_naive(dy, cache_naive)):
        assert fast.dtype == dtype and rel(fast, naive) < tol, name


# ---- the weight gradient's product with the taller operand first -----------------------------
@pytest.mark.parametrize("enabled", [True, False], ids=["taller-first", "as-written"])
@pytest.mark.parametrize("x_shape, fo, k, stride, padding, dilation",
                         [CONV_PATHS[i] for i in (0, 1, 4, 6, 8)] + [
                             pytest.param((2, 6, 5, 4), 2, (1, 1), 1, 0, 1, id="1x1-narrowing")])
@pytest.mark.parametrize("dtype, tol", [(np.float64, TIGHT), (np.float32, 1e-5)])
def test_weight_grad_orientation_equals_naive(rng, recompute, enabled, x_shape, fo, k, stride,
                                              padding, dilation, dtype, tol):
    previous = F.set_taller_operand_first(enabled)
    try:
        x, w, b = _conv_case(rng, x_shape, fo, k, dtype)
        geometry = dict(stride=stride, padding=padding, dilation=dilation)
        y, cache = F.conv2d_forward(channel_major(x), w, b, **geometry)
        _, cache_naive = F.conv2d_forward_naive(x, w, b, **geometry)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, db = F.conv2d_backward(channel_major(dy), cache)
        dx_naive, dw_naive, _ = F.conv2d_backward_naive(dy, cache_naive)
    finally:
        F.set_taller_operand_first(previous)
    assert dw.dtype == dx.dtype == dtype and dw.shape == w.shape
    assert rel(dw, dw_naive) < tol and rel(dx, dx_naive) < tol


def test_fast_path_switches_return_the_previous_setting():
    for switch in (F.set_column_padding, F.set_taller_operand_first):
        previous = switch(False)
        try:
            assert previous is True  # on by default
            assert switch(True) is False
        finally:
            switch(previous)


# ---- max pooling over phase planes ------------------------------------------------------------
POOL_PATHS = [
    pytest.param((2, 3, 11, 11), 3, 2, 1, 1, id="resnet-stem-3x3-stride2-pad1"),
    pytest.param((1, 2, 9, 10), 2, 2, 0, 1, id="2x2-stride2"),
    pytest.param((1, 2, 10, 9), (3, 2), (3, 1), (1, 1), 1, id="stride3x1"),
    pytest.param((2, 1, 12, 12), 3, 2, 1, 2, id="dilated"),
    pytest.param((1, 2, 7, 7), 3, 1, 1, 1, id="stride1"),
    pytest.param((1, 1, 5, 5), 5, 5, 2, 1, id="one-window"),
]


@pytest.mark.parametrize("memory", ["nchw", "channel-major"])
@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", POOL_PATHS)
def test_maxpool_equals_naive(rng, memory, shape, kernel_size, stride, padding, dilation):
    x = spaced(rng, shape)
    if memory == "channel-major":
        x = channel_major(x)
    y, cache = F.maxpool2d_forward(x, kernel_size, stride, padding, dilation)
    y_naive, cache_naive = F.maxpool2d_forward_naive(x, kernel_size, stride, padding, dilation)
    np.testing.assert_array_equal(y, y_naive)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(F.maxpool2d_backward(dy, cache),
                                  F.maxpool2d_backward_naive(dy, cache_naive))


@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", POOL_PATHS)
def test_maxpool_ties_go_to_the_first_maximum(shape, kernel_size, stride, padding, dilation):
    """Integer values in a small range: many ties, which the naive scan breaks to the first."""
    x = np.random.default_rng(1).integers(0, 3, shape).astype(np.float64)
    y, cache = F.maxpool2d_forward(x, kernel_size, stride, padding, dilation)
    y_naive, cache_naive = F.maxpool2d_forward_naive(x, kernel_size, stride, padding, dilation)
    np.testing.assert_array_equal(y, y_naive)
    dy = np.arange(y.size, dtype=np.float64).reshape(y.shape) + 1
    np.testing.assert_array_equal(F.maxpool2d_backward(dy, cache),
                                  F.maxpool2d_backward_naive(dy, cache_naive))


def test_maxpool_nan_window_routes_its_gradient_to_its_last_nan():
    """PyTorch's kernel takes an element when ``val > max or isnan(val)``: the last NaN wins."""
    x = np.array([[np.nan, 1.0, np.nan, np.nan], [2.0, 3.0, 4.0, 0.0]]).reshape(1, 1, 2, 4)
    y, cache = F.maxpool2d_forward(x, 2, 2)
    assert np.isnan(y).all()
    dx = F.maxpool2d_backward(np.array([[[[10.0, 20.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[10.0, 0, 0, 20.0], [0, 0, 0, 0]]]])


def test_maxpool_float32(rng):
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    y, cache = F.maxpool2d_forward(x, 3, 2, 1)
    assert y.dtype == F.maxpool2d_backward(np.ones_like(y), cache).dtype == np.float32


# ---- batch norm on the (C, N*H*W) view ---------------------------------------------------------
def _batchnorm_reference(x, gamma, beta, mean, var, eps, dy, batch_stats):
    """The textbook formulas on NCHW arrays, reductions over axes (0, 2, 3), in float64."""
    axes, M = (0, 2, 3), x.size // x.shape[1]
    if batch_stats:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    x_hat = (x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + eps)
    g = np.ones(x.shape[1]) if gamma is None else gamma
    y = x_hat * g.reshape(1, -1, 1, 1) + (0 if beta is None else beta.reshape(1, -1, 1, 1))
    dbeta, dgamma = dy.sum(axis=axes), (dy * x_hat).sum(axis=axes)
    scale = (g / np.sqrt(var + eps)).reshape(1, -1, 1, 1)
    if batch_stats:
        dx = scale * (dy - (dbeta / M).reshape(1, -1, 1, 1) - x_hat * (dgamma / M).reshape(1, -1, 1, 1))
    else:
        dx = scale * dy
    return y, dx, dgamma, dbeta


@pytest.mark.parametrize("memory", ["nchw", "channel-major"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_equals_the_textbook_formulas(rng, memory, training, affine):
    x = rng.standard_normal((3, 4, 5, 6)) * 2 + 1
    dy = rng.standard_normal(x.shape)
    if memory == "channel-major":
        x, dy = channel_major(x), channel_major(dy)
    gamma, beta = (rng.standard_normal(4), rng.standard_normal(4)) if affine else (None, None)
    running_mean, running_var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    expected = _batchnorm_reference(x, gamma, beta, running_mean, running_var, 1e-5, dy, training)
    y, cache = F.batchnorm2d_forward(x, gamma, beta, running_mean.copy(), running_var.copy(),
                                     training, 0.1, 1e-5)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dy, cache)
    assert rel(y, expected[0]) < TIGHT and rel(dx, expected[1]) < TIGHT
    if affine:
        assert rel(dgamma, expected[2]) < TIGHT and rel(dbeta, expected[3]) < TIGHT
    else:
        assert dgamma is None and dbeta is None


def test_batchnorm_float32_stays_float32(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    params = [np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32),
              np.ones(3, np.float32)]
    y, cache = F.batchnorm2d_forward(x, *params, True, 0.1, 1e-5)
    assert y.dtype == np.float32 and params[2].dtype == params[3].dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.batchnorm2d_backward(np.ones_like(y), cache))


# ---- memory order: every op hands the next one channel-major arrays -----------------------------
def _is_channel_major(a):
    """Memory ordered (C, N, H, W), gaps allowed (col2im's dx is a view of a padded buffer)."""
    strides = a.transpose(1, 0, 2, 3).strides
    return list(strides) == sorted(strides, reverse=True) and strides[-1] == a.itemsize


def test_ops_return_channel_major_arrays(rng):
    """Not a semantic contract (values are tested above), but the reason the ops chain without
    copies: each reads channel-major input as a free (C, N*H*W) view.  NCHW input in, channel-major
    out, so a network's layers hand each other channel-major arrays from the first layer on."""
    x = rng.standard_normal((2, 3, 8, 8))
    y, conv_cache = F.conv2d_forward(x, rng.standard_normal((4, 3, 3, 3)), None, padding=1)
    assert _is_channel_major(y)
    assert _is_channel_major(F.conv2d_backward(np.ones((2, 4, 8, 8)), conv_cache)[0])
    z, _ = F.batchnorm2d_forward(x, None, None, training=True)
    assert _is_channel_major(z)
    p, pool_cache = F.maxpool2d_forward(x, 3, 2, 1)
    assert _is_channel_major(p)
    shortcut = rng.standard_normal(y.shape)  # NCHW, as a zero-padded shortcut makes it
    s, _ = F.add_forward(y, shortcut)
    assert _is_channel_major(s)
    np.testing.assert_array_equal(s, y + shortcut)
    r, relu_cache = F.relu_forward(y)
    assert _is_channel_major(F.relu_backward(np.ones(y.shape), relu_cache))
    g, pool_shape = F.global_avgpool2d_forward(y)
    dg = F.global_avgpool2d_backward(np.ones(g.shape), pool_shape)
    assert _is_channel_major(dg) and np.allclose(dg, 1 / 64)



@pytest.mark.parametrize("x_shape, fo, k, stride, padding, dilation", CONV_PATHS)
def test_conv_backward_without_input_grad_gives_the_same_dw_db(rng, recompute, split, x_shape, fo,
                                                               k, stride, padding, dilation):
    x, w, b = _conv_case(rng, x_shape, fo, k)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y, cache = F.conv2d_forward(x, w, b, **geometry)
    dy = rng.standard_normal(y.shape)
    _, dw, db = F.conv2d_backward(dy, cache)
    dx_skipped, dw_skipped, db_skipped = F.conv2d_backward(dy, cache, input_grad=False)
    assert dx_skipped is None
    assert rel(dw_skipped, dw) < TIGHT and rel(db_skipped, db) < TIGHT


@pytest.mark.parametrize("options, k", [(dict(groups=2), (3, 3)), (dict(padding="same"), (2, 2))],
                         ids=["grouped", "same-padded-even-kernel"])
def test_grouped_and_padded_backward_without_input_grad(rng, options, k):
    x, w, b = _conv_case(rng, (2, 4, 6, 6), 4, k)
    if "groups" in options:
        w = w[:, :2]
    y, cache = F.conv2d_forward(x, w, b, **options)
    assert type(cache).__name__ in ("GroupedCache", "PaddedCache")
    dy = rng.standard_normal(y.shape)
    dx, dw, db = F.conv2d_backward(dy, cache, input_grad=False)
    assert dx is None
    assert rel(dw, F.conv2d_backward(dy, cache)[1]) < TIGHT
