"""The ops' CPU threads (parallel.py): the split itself, its products, and the unfolding and its
products block by block (conv_blocked.py), each against the unsplit computation."""
import importlib
import os
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyresnet import functional as F
from tinyresnet.functional import conv_blocked, parallel

im2col_module = importlib.import_module("tinyresnet.functional.im2col")  # the module, not the function


@pytest.fixture
def threads(monkeypatch):
    """Three threads, every pass split however small; restores the setting afterwards."""
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    previous = F.set_num_threads(3)
    yield 3
    F.set_num_threads(previous)


@given(st.integers(0, 50), st.integers(1, 8))
def test_blocks_cover_the_range_in_order_without_empty_blocks(n, parts):
    blocks = parallel.blocks(n, parts)
    assert [i for lo, hi in blocks for i in range(lo, hi)] == list(range(n))
    assert all(hi > lo for lo, hi in blocks) or n == 0
    sizes = [hi - lo for lo, hi in blocks]
    assert max(sizes, default=0) - min(sizes, default=0) <= 1
    assert len(blocks) == max(1, min(parts, n))


def test_every_block_runs_once_and_on_another_thread_too(threads):
    seen, names = [], set()

    def fn(lo, hi):
        seen.append((lo, hi))
        names.add(threading.current_thread().name)

    parallel.parallel_for(fn, 10)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]
    assert len(names) >= 2 and threading.current_thread().name in names


def test_small_passes_and_one_thread_stay_in_the_calling_thread():
    names = set()

    def fn(lo, hi):
        names.add((threading.current_thread().name, lo, hi))

    previous = F.set_num_threads(3)
    try:
        parallel.parallel_for(fn, 10, elements=parallel.MIN_ELEMENTS)  # one thread's worth
        F.set_num_threads(1)
        parallel.parallel_for(fn, 10)
    finally:
        F.set_num_threads(previous)
    assert names == {(threading.current_thread().name, 0, 10)}


def test_an_error_in_any_block_is_raised_after_every_block_finished(threads):
    finished = []

    def fn(lo, hi):
        if lo == 3:
            raise ValueError("block 3")
        finished.append(lo)

    with pytest.raises(ValueError, match="block 3"):
        parallel.parallel_for(fn, 9)
    assert sorted(finished) == [0, 6]


def test_a_split_inside_a_block_runs_in_that_thread(threads):
    """A nested split must not wait on the pool it runs in (with two workers busy, it would)."""
    inner = []

    def outer(lo, hi):
        parallel.parallel_for(lambda a, b: inner.append((threading.current_thread().name, a, b)),
                              4)

    parallel.parallel_for(outer, 3)
    assert len(inner) == 3 and all((a, b) == (0, 4) for _, a, b in inner)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_num_threads_refuses_anything_but_a_positive_integer(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected an integer >= 1"):
        F.set_num_threads(bad)


def test_set_num_threads_returns_the_previous_number():
    previous = F.set_num_threads(2)
    try:
        assert F.set_num_threads(5) == 2
        assert F.get_num_threads() == 5
    finally:
        F.set_num_threads(previous)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_pool(threads):
    parallel.parallel_for(lambda lo, hi: None, 4)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads; a split must still finish
        try:
            out = []
            parallel.parallel_for(lambda lo, hi: out.append(lo), 4)
            os._exit(0 if sorted(out) == [0, 1, 2] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("shape", [(7, 5, 300), (300, 5, 7), (1, 9, 1), (4, 0, 6)])
def test_matmul_equals_the_unsplit_product(rng, threads, shape):
    m, k, n = shape
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(parallel.matmul(a, b), a @ b, rtol=1e-13, atol=1e-13)
    out = np.full((m, n), np.nan)
    assert parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-13, atol=1e-13)
    # transposed and sliced operands, as conv2d passes them
    np.testing.assert_allclose(parallel.matmul(b.T[:, :k], a.T[:k]), b.T[:, :k] @ a.T[:k],
                               rtol=1e-13, atol=1e-13)


def test_products_run_single_threaded_blas_and_leave_its_setting_as_it_was():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    with blas.limit(limits=2):
        before = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(
            user_api="blas").lib_controllers]
        with parallel.blas_single_threaded():
            inside = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(
                user_api="blas").lib_controllers]
        after = [lib.num_threads for lib in threadpoolctl.ThreadpoolController().select(
            user_api="blas").lib_controllers]
    assert set(inside) == {1}
    assert after == before


@pytest.mark.parametrize("geometry", [
    dict(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), dilation=(1, 1)),
])
def test_split_im2col_and_col2im_equal_one_thread_bit_for_bit(rng, threads, geometry):
    x = rng.standard_normal((3, 5, 11, 10))
    split = im2col_module._im2col(x, **geometry)
    whole = im2col_module._im2col(x, **geometry, split=False)
    np.testing.assert_array_equal(split, whole)
    folded = im2col_module._col2im(split, x.shape, **geometry)
    F.set_num_threads(1)
    np.testing.assert_array_equal(folded, im2col_module._col2im(whole, x.shape, **geometry))


@pytest.mark.parametrize("block_bytes", [1, 10_000, 1 << 30], ids=["image", "a-few", "whole"])
@pytest.mark.parametrize("with_b", [False, True])
def test_unfold_times_equals_whole_batch_products(rng, threads, monkeypatch, block_bytes, with_b):
    """Blocks of one image, of a few, and one block per thread; five images on three threads."""
    monkeypatch.setattr(conv_blocked, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_blocked, "WEIGHT_FACTOR", 0)
    geometry = dict(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    x = rng.standard_normal((5, 4, 6, 7))
    a = rng.standard_normal((3, 4 * 9))
    b = rng.standard_normal((2, 5 * 6 * 7)) if with_b else None
    cols = im2col_module._im2col(x, **geometry, split=False)
    y, g = conv_blocked.unfold_times(a, x, **geometry, b=b)
    np.testing.assert_allclose(y, a @ cols, rtol=1e-13, atol=1e-13)
    if with_b:
        np.testing.assert_allclose(g, b @ cols.T, rtol=1e-13, atol=1e-13)
    else:
        assert g is None


def test_images_per_block_fills_the_block_and_covers_the_weights():
    assert conv_blocked.images_per_block(image_bytes=10**9, weight_bytes=0) == 1
    assert conv_blocked.images_per_block(conv_blocked.BLOCK_BYTES // 4, 0) == 4
    big_weights = conv_blocked.BLOCK_BYTES  # the block must then hold WEIGHT_FACTOR times them
    assert (conv_blocked.images_per_block(conv_blocked.BLOCK_BYTES // 8, big_weights)
            == 8 * conv_blocked.WEIGHT_FACTOR)


def test_float32_convolution_on_threads_stays_float32_and_close_to_one_thread(rng, threads):
    x = rng.standard_normal((6, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    y, cache = F.conv2d_forward(x, w, None, padding=1)
    dx, dw, _ = F.conv2d_backward(np.ones_like(y), cache)
    F.set_num_threads(1)
    y1, cache1 = F.conv2d_forward(x, w, None, padding=1)
    dx1, dw1, _ = F.conv2d_backward(np.ones_like(y1), cache1)
    for split, one in [(y, y1), (dx, dx1), (dw, dw1)]:
        assert split.dtype == np.float32
        np.testing.assert_allclose(split, one, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("block_bytes", [1, 10_000, 1 << 30], ids=["image", "a-few", "whole"])
@pytest.mark.parametrize("geometry", [
    dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1)),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
], ids=["3x3-stride2", "dilated-over-padded"])
def test_unfold_backward_equals_whole_batch_col2im(rng, threads, monkeypatch, block_bytes,
                                                   geometry):
    monkeypatch.setattr(conv_blocked, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(conv_blocked, "WEIGHT_FACTOR", 0)
    x = rng.standard_normal((5, 4, 9, 8))
    cols = im2col_module._im2col(x, **geometry, split=False)
    w2 = rng.standard_normal((3, cols.shape[0]))
    dy2 = rng.standard_normal((3, cols.shape[1]))
    dx, dw = conv_blocked.unfold_backward(w2, dy2, x, **geometry)
    np.testing.assert_allclose(dw, dy2 @ cols.T, rtol=1e-13, atol=1e-13)
    expected = im2col_module._col2im(w2.T @ dy2, x.shape, **geometry, split=False)
    np.testing.assert_allclose(dx, expected, rtol=1e-13, atol=1e-13)
    assert dx.shape == x.shape


@pytest.mark.parametrize("order", ["nchw", "channel-major", "strided-slice"])
def test_elementwise_equals_the_ufunc_in_any_memory_order(rng, threads, order):
    a = rng.standard_normal((4, 5, 3, 6))
    b = rng.standard_normal((4, 5, 3, 6))
    if order == "channel-major":
        a = np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif order == "strided-slice":
        a = rng.standard_normal((4, 10, 3, 6))[:, ::2]
    out = np.empty_like(a)
    assert parallel.elementwise(np.add, a, b, out=out) is out
    np.testing.assert_array_equal(out, a + b)
    mask = parallel.elementwise(np.greater, a, 0, out=np.empty_like(a, dtype=bool))
    np.testing.assert_array_equal(mask, a > 0)
    assert parallel.elementwise(np.multiply, 2.0, 3.0, out=np.empty(())) == 6.0


def test_relu_and_the_residual_sum_on_threads_equal_one_thread(rng, threads):
    x = np.ascontiguousarray(rng.standard_normal((3, 6, 5, 4)).transpose(1, 0, 2, 3))
    x = x.transpose(1, 0, 2, 3)  # channel-major, as a network hands it on
    dy = rng.standard_normal(x.shape)
    y, mask = F.relu_forward(x)
    dx = F.relu_backward(dy, mask)
    s, _ = F.add_forward(x, dy)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(dx, dy * (x > 0))
    np.testing.assert_array_equal(s, x + dy)
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous and dx.transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("group_bytes", [1, 1 << 30], ids=["row-groups", "one-group"])
def test_batch_norm_on_threads_equals_one_thread_bit_for_bit(rng, threads, monkeypatch, training,
                                                             group_bytes):
    """Every formula is per channel: a split over channels changes no bit of y, dx or the
    running statistics."""
    monkeypatch.setattr(parallel, "GROUP_BYTES", group_bytes)
    x = rng.standard_normal((4, 7, 5, 3))
    gamma, beta = rng.standard_normal(7), rng.standard_normal(7)
    dy = rng.standard_normal(x.shape)
    running = [rng.standard_normal(7), rng.standard_normal(7) ** 2]  # mean, var
    results = []
    for n in (3, 1):
        F.set_num_threads(n)
        stats = [s.copy() for s in running]
        y, cache = F.batchnorm2d_forward(x, gamma, beta, *stats, training=training)
        results.append((y, *F.batchnorm2d_backward(dy, cache), *stats))
    for split, one in zip(*results):
        np.testing.assert_array_equal(split, one)


@pytest.mark.parametrize("geometry", [dict(kernel_size=3, stride=2, padding=1),
                                      dict(kernel_size=2, stride=1, dilation=2)])
def test_max_pooling_on_threads_equals_one_thread_bit_for_bit(rng, threads, geometry):
    x = rng.standard_normal((3, 7, 9, 8))
    x[0, 1, 2, 3] = np.nan  # the NaN rule runs per block too
    dy = rng.standard_normal(F.maxpool2d_forward(x, **geometry)[0].shape)
    results = []
    for n in (3, 1):
        F.set_num_threads(n)
        y, cache = F.maxpool2d_forward(x, **geometry)
        results.append((y, cache[0], F.maxpool2d_backward(dy, cache)))
    for split, one in zip(*results):
        np.testing.assert_array_equal(split, one)


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OPENBLAS_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "2,1", "OPENBLAS_NUM_THREADS": "5"}, 2),  # OpenMP's nested form
    ({"OMP_NUM_THREADS": "", "OPENBLAS_NUM_THREADS": "0"}, None),  # unset or nonsense: the cores
])
def test_the_default_follows_the_thread_variables(monkeypatch, env, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert parallel._default_threads() == (expected or cores)


def test_the_weight_gradient_does_not_depend_on_which_thread_finishes_first(rng, monkeypatch):
    """Threads finish in any order; their parts of dW are added in batch order, so a run repeats
    itself bit for bit (a resumed training run relies on it).  Simulated: the blocks of three
    threads run in the given order, then in reverse."""
    monkeypatch.setattr(conv_blocked, "BLOCK_BYTES", 1)
    x = rng.standard_normal((6, 4, 7, 7))
    w_strided, dy_strided = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((6, 5, 4, 4))
    w_full, dy_full = rng.standard_normal((4, 4, 3, 3)), rng.standard_normal((6, 4, 7, 7))
    results = []
    for order in (1, -1):
        def in_order(fn, n, elements=None, xp=np):
            for lo, hi in parallel.blocks(n, 3)[::order]:
                fn(lo, hi)

        monkeypatch.setattr(conv_blocked, "parallel_for", in_order)
        _, cache = F.conv2d_forward(x, w_strided, None, stride=2, padding=1)  # unfold_backward
        _, dw_strided, _ = F.conv2d_backward(dy_strided, cache)
        _, cache = F.conv2d_forward(x, w_full, None, padding=1)  # stride 1: dy's full convolution
        _, dw_full, _ = F.conv2d_backward(dy_full, cache)
        results.append((dw_strided, dw_full))
    for first, reverse in zip(*results):
        np.testing.assert_array_equal(first, reverse)
