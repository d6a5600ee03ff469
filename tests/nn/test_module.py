"""The Module API: registration and names, state_dict, modes, gradients, dtypes, no_grad, repr,
and the behaviours PyTorch users rely on (a module called twice, shared modules, live state dicts,
load_state_dict's named tuple, slicing, tracebacks), each compared with torch where it is installed."""
import traceback
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
    assert all(m._caches == [] for m in net.modules())
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


# ---- behaviours PyTorch defines ----------------------------------------------------------------
class TwiceReLU(nn.Module):
    """fc2 -> relu -> fc1 -> relu with ONE relu module, as torchvision's BasicBlock uses its relu."""

    def __init__(self, relu2=None):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)
        if relu2 is not None:
            self.relu2 = relu2

    def forward(self, x):
        second = self.relu2 if "relu2" in self._modules else self.relu
        return second(self.fc2(self.relu(self.fc1(x))))

    def backward(self, dy):
        second = self.relu2 if "relu2" in self._modules else self.relu
        return self.fc1.backward(self.relu.backward(self.fc2.backward(second.backward(dy))))


def test_a_module_called_twice_pops_its_caches_last_call_first(rng):
    shared, separate = TwiceReLU().double(), TwiceReLU(relu2=nn.ReLU()).double()
    separate.load_state_dict(shared.state_dict())
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    y = shared(x)
    assert len(shared.relu._caches) == 2  # one per call, a stack
    np.testing.assert_array_equal(y, separate(x))
    np.testing.assert_array_equal(shared.backward(dy), separate.backward(dy))
    for (name, p), q in zip(shared.named_parameters(), separate.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
    assert shared.relu._caches == []
    with pytest.raises(RuntimeError, match=r"ReLU 'relu': backward called without a forward"):
        shared.relu.backward(dy)
    with nn.no_grad():
        shared(x)
    assert all(m._caches == [] for m in shared.modules())


def test_a_new_forward_pass_drops_the_caches_an_unfinished_one_left(rng):
    """Forward-only passes (evaluation without no_grad) must not pile up caches: each call from
    outside a forward starts a new pass, as torch frees the graph of an output nobody keeps."""
    net = TwiceReLU().double()
    x = rng.standard_normal((2, 3))
    for _ in range(3):
        net(x)
    assert len(net.relu._caches) == 2 and len(net.fc1._caches) == 1
    net.backward(np.ones((2, 2)))
    assert all(m._caches == [] for m in net.modules())


def test_a_module_called_twice_matches_torch(rng):
    torch = pytest.importorskip("torch")
    ours = TwiceReLU().double()
    theirs = torch.nn.Sequential(OrderedDict([
        ("fc1", torch.nn.Linear(3, 4)), ("relu", torch.nn.ReLU()), ("fc2", torch.nn.Linear(4, 2)),
    ])).double()
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    x, dy = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs.relu(theirs.fc2(theirs.relu(theirs.fc1(xt))))
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-13, atol=1e-15)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, theirs.get_parameter(name).grad.numpy(), rtol=1e-13,
                                   atol=1e-15, err_msg=name)


def test_load_state_dict_returns_the_named_tuple_torch_returns():
    net = nn.Linear(3, 2)
    result = net.load_state_dict({"weight": np.ones((2, 3)), "extra": np.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert repr(result) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=['extra'])"
    full = net.load_state_dict(net.state_dict())
    assert full == ([], []) and repr(full) == "<All keys matched successfully>"
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 2)
    expected = theirs.load_state_dict({"weight": torch.ones(2, 3), "extra": torch.ones(1)},
                                      strict=False)
    assert type(result).__name__ == type(expected).__name__ == "_IncompatibleKeys"
    assert result._fields == expected._fields and tuple(result) == tuple(expected)
    assert repr(result) == repr(expected)
    assert repr(full) == repr(theirs.load_state_dict(theirs.state_dict()))


def test_an_error_in_a_users_forward_keeps_the_users_line(rng):
    class Student(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(x) + np.ones(5)  # the student's bug: shapes (2, 4) and (5,)

    model = nn.Sequential(OrderedDict([("head", Student())]))
    with pytest.raises(ValueError, match=r"^Student 'head': operands could not be broadcast") as info:
        model(rng.standard_normal((2, 3)).astype(np.float32))
    assert isinstance(info.value.__cause__, ValueError)
    text = "".join(traceback.format_exception(info.value))
    assert "return self.fc(x) + np.ones(5)  # the student's bug" in text


def test_state_dict_arrays_stay_live_through_load_and_training(rng):
    net = _net()
    sd = net.state_dict()
    weight, counter = sd["fc.weight"], sd["layer1.0.bn1.num_batches_tracked"]
    new = {k: np.full(v.shape, 0.5, dtype=np.float64) for k, v in sd.items()}
    new["layer1.0.bn1.num_batches_tracked"] = np.array(7)
    net.load_state_dict(new)
    assert weight is net.fc.weight.data and weight.dtype == np.float32
    np.testing.assert_array_equal(weight, 0.5)
    assert int(counter) == 7
    net(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))  # training mode: the counter moves
    assert int(counter) == 8


def test_state_dict_arrays_are_live_as_in_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 2)
    taken = theirs.state_dict()["weight"]
    theirs.load_state_dict({"weight": torch.full((2, 3), 0.5), "bias": torch.zeros(2)})
    ours = nn.Linear(3, 2)
    ours_taken = ours.state_dict()["weight"]
    ours.load_state_dict({"weight": np.full((2, 3), 0.5), "bias": np.zeros(2)})
    np.testing.assert_array_equal(ours_taken, taken.numpy())


def test_a_shared_module_is_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU())
    model = nn.Sequential(OrderedDict([("a", seq), ("b", shared), ("c", nn.Sequential(seq))]))
    assert [n for n, _ in model.named_modules()] == ["", "a", "a.0", "a.1", "c"]
    assert [n for n, _ in model.named_parameters()] == ["a.0.weight", "a.0.bias"]
    assert len(list(model.modules())) == 5 and len(model.parameters()) == 2
    # state_dict lists every path, as torch does
    assert list(model.state_dict()) == ["a.0.weight", "a.0.bias", "b.weight", "b.bias",
                                        "c.0.0.weight", "c.0.0.bias"]
    opt = tr.optim.SGD(model.parameters(), lr=0.1)
    before = model.a[0].weight.data.copy()
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    np.testing.assert_allclose(model.b.weight.data, before - 0.1)


def test_shared_module_key_lists_match_torch():
    torch = pytest.importorskip("torch")
    shared = torch.nn.Linear(2, 2)
    bn = torch.nn.BatchNorm2d(2)
    theirs = torch.nn.Sequential(OrderedDict([
        ("a", torch.nn.Sequential(shared, bn)), ("b", shared), ("c", torch.nn.Sequential(bn)),
    ]))
    shared, bn = nn.Linear(2, 2), nn.BatchNorm2d(2)
    ours = nn.Sequential(OrderedDict([
        ("a", nn.Sequential(shared, bn)), ("b", shared), ("c", nn.Sequential(bn)),
    ]))
    for method in ("named_modules", "named_parameters", "named_buffers", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()], method
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours.parameters()) == len(list(theirs.parameters()))


def test_slicing_a_sequential_keeps_keys_and_names():
    body = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU())
    net = nn.Sequential(OrderedDict([("body", body)]))
    part = net.body[1:3]
    assert [n for n, _ in part.named_children()] == ["1", "2"]
    assert list(part.state_dict()) == ["2.weight", "2.bias"]
    assert part[1] is body[2] and len(part) == 2
    assert body[2]._describe() == "Linear 'body.2'"  # the original child is not renamed
    with pytest.raises(ValueError, match=r"Linear 'body\.2': linear: expected"):
        part(np.zeros((1, 4), dtype=np.float32))
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3),
                                 torch.nn.ReLU())[1:3]
    assert list(theirs._modules) == [n for n, _ in part.named_children()]
    assert list(theirs.state_dict()) == list(part.state_dict())
