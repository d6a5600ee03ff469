"""Optimizer state dicts in PyTorch's layout: a torch.optim state dict loads into ours and ours into
torch.optim, and either run then continues exactly as the other (float64, to 1e-12)."""
import numpy as np
import pytest

from tinyresnet import optim
from tinyresnet.nn import Parameter

from .test_sgd_adam import CONFIGS, _grads, _params, _run

torch = pytest.importorskip("torch")


def _torch_run(opt, params, grads):
    for step_grads in grads:
        for tp, g in zip(params, step_grads):
            tp.grad = torch.tensor(g)
        opt.step()


def _to_torch(state_dict):
    """Our state dict with its arrays as tensors (what torch.optim.load_state_dict expects)."""
    return {
        "state": {i: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                      for k, v in buffers.items()} for i, buffers in state_dict["state"].items()},
        "param_groups": state_dict["param_groups"],
    }


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_torch_state_dict_loads_and_continues(name, kwargs, rng):
    start = _params(rng, np.float64)
    grads = _grads(rng, 10, np.float64)
    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in start]
    torch_opt = getattr(torch.optim, name)(torch_params, **kwargs)
    _torch_run(torch_opt, torch_params, grads[:5])

    ours = [Parameter(tp.detach().numpy().copy()) for tp in torch_params]
    opt = getattr(optim, name)(ours, lr=5.0)  # every hyper-parameter comes from torch's state
    opt.load_state_dict(torch_opt.state_dict())
    assert opt.param_groups[0]["lr"] == kwargs["lr"]
    _torch_run(torch_opt, torch_params, grads[5:])
    _run(opt, ours, grads[5:])
    for p, tp in zip(ours, torch_params):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_our_state_dict_loads_into_torch_and_continues(name, kwargs, rng):
    params = _params(rng, np.float64)
    grads = _grads(rng, 10, np.float64)
    opt = getattr(optim, name)(params, **kwargs)
    _run(opt, params, grads[:5])

    torch_params = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    torch_opt = getattr(torch.optim, name)(torch_params, lr=5.0)
    torch_opt.load_state_dict(_to_torch(opt.state_dict()))
    _run(opt, params, grads[5:])
    _torch_run(torch_opt, torch_params, grads[5:])
    for p, tp in zip(params, torch_params):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_same_layout_as_torch(rng):
    params = _params(rng, np.float64)
    opt = optim.Adam(params, lr=0.01)
    _run(opt, params, _grads(rng, 2, np.float64))
    torch_params = [torch.zeros(p.shape, dtype=torch.float64, requires_grad=True) for p in params]
    torch_opt = torch.optim.Adam(torch_params, lr=0.01)
    _torch_run(torch_opt, torch_params, _grads(rng, 2, np.float64))
    ours, theirs = opt.state_dict(), torch_opt.state_dict()
    assert list(ours) == list(theirs) == ["state", "param_groups"]
    assert list(ours["state"]) == list(theirs["state"])
    for i in ours["state"]:
        assert sorted(ours["state"][i]) == sorted(theirs["state"][i])
    assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])


def test_torch_switches_that_change_the_update_are_refused(rng):
    params = [torch.zeros(2, dtype=torch.float64, requires_grad=True)]
    torch_opt = torch.optim.Adam(params, amsgrad=True)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['amsgrad'\]"):
        optim.Adam([Parameter(np.zeros(2))]).load_state_dict(torch_opt.state_dict())
