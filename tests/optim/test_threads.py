"""The optimizers' step on several threads (parameters shared out by size) against one thread."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyresnet import functional as F, optim
from tinyresnet.functional import parallel
from tinyresnet.nn import Parameter
from tinyresnet.optim.optimizer import _equal_shares


class _P:
    def __init__(self, n):
        self.data = np.empty(n)


@given(st.lists(st.integers(0, 10_000), max_size=30), st.integers(1, 6))
def test_shares_keep_the_order_and_cover_every_parameter(sizes, parts):
    todo = [(_P(n), i, None) for i, n in enumerate(sizes)]
    shares = _equal_shares(todo, parts)
    assert [item for share in shares for item in share] == todo
    assert 1 <= len(shares) <= max(1, parts)


def test_one_large_tensor_is_not_left_with_the_small_ones(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    todo = [(_P(n), None, None) for n in [10, 10, 10, 1_000_000, 10, 2_000_000, 10]]
    shares = _equal_shares(todo, 2)
    assert [sum(p.data.size for p, _, _ in s) for s in shares] == [1_000_040, 2_000_010]


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    lambda ps: optim.Adam(ps, lr=1e-3, weight_decay=1e-2),
], ids=["sgd", "adam"])
def test_a_threaded_step_equals_one_thread_bit_for_bit(rng, monkeypatch, make):
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    shapes = [(64, 3, 3, 3), (64,), (128, 64, 3, 3), (10, 128), (10,)]
    start = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(3)]
    results = []
    for threads in (3, 1):
        previous = F.set_num_threads(threads)
        try:
            params = [Parameter(a.copy()) for a in start]
            opt = make(params)
            for step in grads:
                for p, g in zip(params, step):
                    p.grad = g.copy()
                opt.step()
        finally:
            F.set_num_threads(previous)
        results.append([p.data for p in params])
    for split, one in zip(*results):
        np.testing.assert_array_equal(split, one)
