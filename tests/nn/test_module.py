"""The Module API: registration and names, state_dict, modes, gradients, dtypes, no_grad, repr."""
from collections import OrderedDict

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import nn


class Block(nn.Module):
    """A small residual-style block, registered by attribute assignment as in torchvision."""

    def __init__(self, C):
        super().__init__()
        self.conv1 = nn.Conv2d(C, C, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(C)
        self.relu = nn.ReLU()
        self.downsample = None

    def forward(self, x):
        return self.relu(self.bn1(self.conv1(x)))

    def backward(self, dy):
        return self.conv1.backward(self.bn1.backward(self.relu.backward(dy)))


def _net():
    return nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(3, 2, 3, padding=1)),
        ("layer1", nn.Sequential(Block(2), Block(2))),
        ("pool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(2, 4)),
    ]))


EXPECTED_PARAMETERS = [
    "stem.weight", "stem.bias",
    "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
    "layer1.1.conv1.weight", "layer1.1.bn1.weight", "layer1.1.bn1.bias",
    "fc.weight", "fc.bias",
]


def test_named_parameters_use_pytorch_names():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == EXPECTED_PARAMETERS
    assert [p for _, p in net.named_parameters()] == net.parameters()
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())


def test_state_dict_keys_in_order_with_bn_buffers():
    bn_keys = lambda pre: [f"{pre}.weight", f"{pre}.bias", f"{pre}.running_mean",  # noqa: E731
                           f"{pre}.running_var", f"{pre}.num_batches_tracked"]
    expected = (["stem.weight", "stem.bias", "layer1.0.conv1.weight"] + bn_keys("layer1.0.bn1")
                + ["layer1.1.conv1.weight"] + bn_keys("layer1.1.bn1") + ["fc.weight", "fc.bias"])
    assert list(_net().state_dict()) == expected


def test_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.Linear(2, 2)))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert tuple(ours.state_dict()[k].shape) == tuple(v.shape), k


def test_load_state_dict_round_trip(rng):
    tr.manual_seed(1)
    a = _net()
    a(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))  # move the BN running stats
    tr.manual_seed(2)
    b = _net()
    sd = {k: np.array(v) for k, v in a.state_dict().items()}
    assert b.load_state_dict(sd) == ([], [])
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, sd[k], err_msg=k)
        assert v.dtype == a.state_dict()[k].dtype, k
    sd["fc.bias"][...] = 99  # the loaded arrays are copies
    assert not (b.fc.bias.data == 99).any()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x), b(x))
    assert int(b.layer1[0].bn1.num_batches_tracked) == 1


def test_load_state_dict_casts_to_the_module_dtype():
    net = nn.Linear(3, 2)
    net.load_state_dict({"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert net.weight.dtype == net.bias.dtype == np.float32


def test_load_state_dict_non_strict_reports_missing_and_unexpected():
    net = nn.Linear(3, 2)
    missing, unexpected = net.load_state_dict({"weight": np.ones((2, 3)), "extra": np.ones(1)}, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra"])
    np.testing.assert_array_equal(net.weight.data, 1)


def test_train_and_eval_propagate():
    net = _net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.layer1.train()
    assert net.layer1[1].bn1.training and not net.stem.training
    net.train()
    assert all(m.training for m in net.modules())


def _one_step(net, x, dy):
    y = net(x)
    net.backward(dy)
    return y


def test_gradients_accumulate_and_zero_grad_clears(rng):
    net = _net().double()
    x = rng.standard_normal((2, 3, 4, 4))
    dy = rng.standard_normal((2, 4))
    _one_step(net, x, dy)
    first = {n: p.grad.copy() for n, p in net.named_parameters()}
    _one_step(net, x, dy)  # same batch (BN stats depend only on it): the same gradient again
    for n, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * first[n], rtol=1e-12, err_msg=n)
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_frozen_parameter_gets_no_gradient(rng):
    fc = nn.Linear(3, 2).double()
    fc.weight.requires_grad = False
    _one_step(fc, rng.standard_normal((2, 3)), np.ones((2, 2)))
    assert fc.weight.grad is None and fc.bias.grad is not None


def test_to_float64_casts_parameters_gradients_and_buffers(rng):
    net = _net()
    _one_step(net, rng.standard_normal((2, 3, 4, 4)).astype(np.float32), np.ones((2, 4), np.float32))
    assert net.to(np.float64) is net
    for n, p in net.named_parameters():
        assert p.data.dtype == p.grad.dtype == np.float64, n
    sd = net.state_dict()
    assert sd["layer1.0.bn1.running_var"].dtype == np.float64
    assert np.asarray(sd["layer1.0.bn1.num_batches_tracked"]).dtype == np.int64  # counters stay integer
    assert net.float().stem.weight.dtype == np.float32
    assert net.to("cpu").double().fc.bias.dtype == np.float64


def test_no_grad_keeps_no_cache(rng):
    net = _net().double()
    x = rng.standard_normal((1, 3, 4, 4))
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        y = net(x)
    assert nn.is_grad_enabled()
    assert all(m._cache is None for m in net.modules())
    with pytest.raises(RuntimeError, match="backward called without a forward"):
        net.backward(np.ones_like(y))
    np.testing.assert_array_equal(y, net(x))  # same result with caching


def test_no_grad_restores_on_error():
    with pytest.raises(KeyError):
        with nn.no_grad():
            raise KeyError
    assert nn.is_grad_enabled()


def test_backward_releases_the_cache(rng):
    fc = nn.Linear(3, 2).double()
    fc(rng.standard_normal((2, 3)))
    fc.backward(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match=r"Linear: backward called without a forward"):
        fc.backward(np.ones((2, 2)))


def test_repr_reads_like_pytorch():
    text = repr(_net())
    assert text.startswith("Sequential(\n  (stem): Conv2d(3, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))")
    assert "    (0): Block(\n      (conv1): Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)" in text
    assert "(bn1): BatchNorm2d(2, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in text
    assert "(fc): Linear(in_features=2, out_features=4, bias=True)" in text
    assert text.endswith(")")
    assert repr(nn.Parameter(np.zeros((2, 3)))) == "Parameter(shape=(2, 3), dtype=float64)"


def test_sequential_indexing_len_iteration_and_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3
    assert seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]
    seq.append(nn.Identity())
    assert len(seq) == 4 and [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    assert list(seq.children()) == layers + [seq[3]]


def test_named_modules_and_qualified_names():
    net = _net()
    names = [n for n, _ in net.named_modules()]
    assert names[:4] == ["", "stem", "layer1", "layer1.0"]
    assert "layer1.1.bn1" in names
    assert net.layer1[1].bn1._describe() == "BatchNorm2d 'layer1.1.bn1'"


def test_assigning_a_non_parameter_to_a_parameter_slot_is_refused():
    fc = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Linear: 'weight' holds a Parameter or Module"):
        fc.weight = np.zeros((2, 2))
    fc.bias = None
    assert [n for n, _ in fc.named_parameters()] == ["weight"]


def test_apply_visits_children_first():
    seen = []
    nn.Sequential(nn.ReLU(), nn.Sequential(nn.Identity())).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["ReLU", "Identity", "Sequential", "Sequential"]


def test_module_without_super_init_is_refused():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"Broken: call super\(\)\.__init__\(\)"):
        Broken()
