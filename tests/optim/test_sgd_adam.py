"""SGD, Adam and AdamW (tinyresnet/optim/sgd.py, adam.py, optimizer.py): parity with torch.optim
over 20 steps on the same gradients, dtype preservation, state_dict round trips, bad input."""
import numpy as np
import pytest

from tinyresnet import optim
from tinyresnet.nn import Parameter

SHAPES = [(3, 4), (5,), (2, 3, 3)]

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, betas=(0.85, 0.95), weight_decay=0.1)),
]


def _params(rng, dtype):
    return [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def _grads(rng, steps, dtype):
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _run(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        opt.step()


@pytest.mark.torch
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch_over_20_steps(name, kwargs, rng):
    torch = pytest.importorskip("torch")
    params = _params(rng, np.float64)
    grads = _grads(rng, 20, np.float64)
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    torch_opt = getattr(torch.optim, name)(torch_params, **kwargs)
    for step_grads in grads:
        for tp, g in zip(torch_params, step_grads):
            tp.grad = torch.tensor(g)
        torch_opt.step()
    _run(getattr(optim, name)(params, **kwargs), params, grads)
    for p, tp in zip(params, torch_params):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_float32_stays_float32_in_place(name, kwargs, rng):
    params = _params(rng, np.float32)
    arrays = [p.data for p in params]
    opt = getattr(optim, name)(params, **kwargs)
    _run(opt, params, _grads(rng, 3, np.float32))
    for p, a in zip(params, arrays):
        assert p.data is a, "the update must be in place (modules may hold the array)"
        assert p.data.dtype == np.float32
    for buffers in opt.state.values():
        for value in buffers.values():
            assert not hasattr(value, "dtype") or value.dtype == np.float32


def test_sgd_hand_computed_momentum():
    # b1 = g1 = 1, theta1 = 1 - 0.1*1 = 0.9;  b2 = 0.5*1 + 2 = 2.5, theta2 = 0.9 - 0.25 = 0.65
    p = Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.5)
    p.grad = np.array([1.0]); opt.step()
    p.grad = np.array([2.0]); opt.step()
    np.testing.assert_allclose(p.data, [0.65], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], [2.5], rtol=0, atol=1e-15)


def test_adam_first_step_moves_by_lr():
    # After bias correction the first Adam step is lr * g/|g| (up to eps): a known property.
    p = Parameter(np.array([1.0, -2.0, 3.0]))
    opt = optim.Adam([p], lr=0.01, eps=0.0)
    p.grad = np.array([0.5, -4.0, 1e-3])
    opt.step()
    np.testing.assert_allclose(p.data, [0.99, -1.99, 2.99], rtol=0, atol=1e-12)


def test_skips_parameters_without_grad_or_frozen(rng):
    a, b, c = _params(rng, np.float64)
    before_b, before_c = b.data.copy(), c.data.copy()
    c.requires_grad = False
    c.grad = np.ones_like(c.data)
    a.grad = np.ones_like(a.data)
    opt = optim.Adam([a, b, c], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(b.data, before_b)
    np.testing.assert_array_equal(c.data, before_c)
    assert set(opt.state) == {0}


@pytest.mark.parametrize("layout", ["nested", "flat-npz"])
@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_state_dict_round_trip_resumes_exactly(name, kwargs, layout, rng, tmp_path):
    params = _params(rng, np.float32)
    start = [p.data.copy() for p in params]
    grads = _grads(rng, 20, np.float32)
    _run(getattr(optim, name)(params, **kwargs), params, grads)
    straight = [p.data.copy() for p in params]

    resumed = [Parameter(s.copy()) for s in start]
    first = getattr(optim, name)(resumed, **kwargs)
    _run(first, resumed, grads[:10])
    if layout == "nested":  # PyTorch's layout, as state_dict() returns it
        saved = first.state_dict()
    else:  # flattened through an .npz without pickle, as checkpoints before that layout
        np.savez(tmp_path / "opt.npz", **optim.flatten_state_dict(first.state_dict()))
        with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
            saved = dict(f)
    second = getattr(optim, name)(resumed, lr=123.0)  # hyper-parameters come from the state
    second.load_state_dict(saved)
    assert second.param_groups[0]["lr"] == kwargs["lr"]
    _run(second, resumed, grads[10:])
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a.data, b)


def test_state_dict_is_a_snapshot(rng):
    params = _params(rng, np.float64)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    _run(opt, params, _grads(rng, 2, np.float64))
    sd = opt.state_dict()
    saved = sd["state"][0]["momentum_buffer"].copy()
    _run(opt, params, _grads(rng, 1, np.float64))
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], saved)
    assert list(sd) == ["state", "param_groups"]
    assert sd["param_groups"] == [{"lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                                   "weight_decay": 0.0, "nesterov": False, "params": [0, 1, 2]}]
    assert sorted(sd["state"]) == [0, 1, 2] and list(sd["state"][0]) == ["momentum_buffer"]
    assert sorted(optim.flatten_state_dict(sd)) == sorted(
        [f"param_groups.0.{k}" for k in
         ("params", "lr", "momentum", "dampening", "weight_decay", "nesterov")]
        + [f"state.{i}.momentum_buffer" for i in range(3)]
    )


def test_lr_attribute_reads_and_sets_every_group(rng):
    a, b, c = _params(rng, np.float64)
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 0.01}], lr=0.1, momentum=0.9)
    assert opt.lr == 0.1 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["momentum"] == 0.9  # defaults fill the group
    opt.lr = 0.5
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]


def test_param_groups_use_their_own_lr():
    a, b = Parameter(np.array([1.0])), Parameter(np.array([1.0]))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


def test_zero_grad(rng):
    params = _params(rng, np.float64)
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = np.ones_like(p.data)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=-1), "lr must be >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "momentum must be >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), "betas must be two numbers in"),
        (lambda p: optim.AdamW(p, eps=-1), "eps must be >= 0"),
        (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be >= 0"),
        (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
        (lambda p: optim.SGD(p + p, lr=0.1), "appears twice"),
        (lambda p: optim.SGD([{"params": p, "moment": 0.9}], lr=0.1), "unknown hyper-parameter"),
    ],
)
def test_bad_hyperparameters_are_refused(make, message, rng):
    with pytest.raises(ValueError, match=message):
        make(_params(rng, np.float64))


def test_non_parameters_are_refused(rng):
    with pytest.raises(TypeError, match="expected tinyresnet.nn.Parameter objects, got ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        optim.SGD(Parameter(np.zeros(3)), lr=0.1)


def test_gradient_of_the_wrong_shape_is_refused():
    p = Parameter(np.zeros((2, 3)))
    p.grad = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"SGD: parameter 0 has shape \(2, 3\) but its gradient"):
        optim.SGD([p], lr=0.1).step()


def test_load_state_dict_refuses_a_mismatch(rng):
    params = _params(rng, np.float64)
    adam = optim.Adam(params)
    _run(adam, params, _grads(rng, 1, np.float64))
    with pytest.raises(ValueError, match="unknown hyper-parameter.*another optimizer type"):
        optim.SGD(params, lr=0.1).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="held 3 parameters when saved, this one holds 2"):
        optim.Adam(params[:2]).load_state_dict(adam.state_dict())
    other = [Parameter(np.zeros((4, 3))), *params[1:]]
    with pytest.raises(ValueError, match=r"state.0.exp_avg has shape \(3, 4\)"):
        optim.Adam(other).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="unexpected key 'momentum'"):
        optim.Adam(params).load_state_dict({"momentum": 0.9})


@pytest.mark.gpu
@pytest.mark.parametrize("name, kwargs", CONFIGS[::3], ids=[n for n, _ in CONFIGS[::3]])
def test_cupy_parameters_update_in_place_like_numpy(name, kwargs, rng):
    from tinyresnet.backend import cupy_available, to_device, to_numpy

    if not cupy_available():
        pytest.skip("needs CuPy and an NVIDIA GPU")
    cpu = _params(rng, np.float32)
    gpu = [Parameter(to_device(p.data, "cuda")) for p in cpu]
    arrays = [p.data for p in gpu]
    grads = _grads(rng, 5, np.float32)
    _run(getattr(optim, name)(cpu, **kwargs), cpu, grads)
    opt = getattr(optim, name)(gpu, **kwargs)
    _run(opt, gpu, [[to_device(g, "cuda") for g in step] for step in grads])
    for p, a, c in zip(gpu, arrays, cpu):
        assert p.data is a and p.data.dtype == np.float32
        np.testing.assert_allclose(to_numpy(p.data), c.data, rtol=1e-5, atol=1e-6)
    fresh = getattr(optim, name)(gpu, **kwargs)
    fresh.load_state_dict(opt.state_dict())  # CPU arrays in the dict, back onto the GPU
    assert all(type(v).__module__.startswith("cupy")
               for s in fresh.state.values() for v in s.values() if hasattr(v, "shape"))
