"""A4: the reference optimizers follow the update rules its hidden tests write out (and torch.optim
where torch is installed), each known optimizer bug differs from them, and the training part finds
CIFAR-10 where the assignment says it looks."""
import importlib.util

import numpy as np
import pytest

from tinyresnet import nn, optim
from tinyresnet.assign.release import package_root

A4 = package_root() / "assignments" / "A4" / "tests"


def load(name):
    spec = importlib.util.spec_from_file_location(f"_a4_{name}", A4 / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hidden, public = load("hidden_tests"), load("public_tests")


def cifar10_root():
    """Where A4's training part would find CIFAR-10 here, or None."""
    found = public.find_cifar10()
    return None if found is None else found[1]


def steps(make, start, grads):
    params = [nn.Parameter(s.copy()) for s in start]
    optimizer, out = make(params), [[] for _ in params]
    for k in range(len(grads[0])):
        for p, g in zip(params, grads):
            p.grad = g[k].copy()
        optimizer.step()
        for p, h in zip(params, out):
            h.append(p.data.copy())
    return [np.stack(h) for h in out]


@pytest.fixture
def problem(rng):
    return [rng.standard_normal((3, 4)), rng.standard_normal(5)], \
           [rng.standard_normal((4, 3, 4)), rng.standard_normal((4, 5))]


@pytest.mark.parametrize("case", hidden.SGD_CASES, ids=str)
def test_library_sgd_is_the_written_out_rule_and_each_bug_differs(problem, case):
    start, grads = problem
    args = case["lr"], case["momentum"], case["weight_decay"]
    ours = steps(lambda ps: optim.SGD(ps, lr=args[0], momentum=args[1], weight_decay=args[2]),
                 start, [g[:case["steps"]] for g in grads])
    for s, g, value in zip(start, grads, ours):
        np.testing.assert_allclose(value, hidden.sgd_formula(s, g[:case["steps"]], *args),
                                   rtol=1e-12)
    assert any(not np.allclose(ours[0], hidden.sgd_formula(start[0], grads[0][:case["steps"]],
                                                           *args, bug=bug))
               for bug in hidden.SGD_BUGS)


@pytest.mark.parametrize("case", hidden.ADAM_CASES, ids=str)
def test_library_adam_is_the_written_out_rule(problem, case):
    start, grads = problem
    args = (case["lr"], case["beta1"], case["beta2"], case["eps"], case["weight_decay"])
    ours = steps(lambda ps: optim.Adam(ps, lr=args[0], betas=args[1:3], eps=args[3],
                                       weight_decay=args[4]), start, grads)
    for s, g, value in zip(start, grads, ours):
        np.testing.assert_allclose(value, hidden.adam_formula(s, g, *args), rtol=1e-12)


def test_every_bug_is_seen_by_some_hidden_case(problem):
    start, grads = problem
    for bug in hidden.SGD_BUGS:
        assert any(not np.allclose(hidden.sgd_formula(start[0], grads[0], c["lr"], c["momentum"],
                                                      c["weight_decay"]),
                                   hidden.sgd_formula(start[0], grads[0], c["lr"], c["momentum"],
                                                      c["weight_decay"], bug=bug), rtol=1e-8)
                   for c in hidden.SGD_CASES), bug
    for bug in hidden.ADAM_BUGS:
        assert any(not np.allclose(hidden.adam_formula(start[0], grads[0], c["lr"], c["beta1"],
                                                       c["beta2"], c["eps"], c["weight_decay"]),
                                   hidden.adam_formula(start[0], grads[0], c["lr"], c["beta1"],
                                                       c["beta2"], c["eps"], c["weight_decay"],
                                                       bug=bug), rtol=1e-8)
                   for c in hidden.ADAM_CASES), bug


def test_the_formulas_are_torch_optims(problem):
    torch = pytest.importorskip("torch")
    start, grads = problem
    theirs = hidden.torch_steps(start, grads, lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.9, weight_decay=0.01))
    np.testing.assert_allclose(theirs[0], hidden.sgd_formula(start[0], grads[0], 0.05, 0.9, 0.01),
                               rtol=1e-10)
    theirs = hidden.torch_steps(start, grads, lambda ps: torch.optim.Adam(
        ps, lr=0.01, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1))
    np.testing.assert_allclose(theirs[1], hidden.adam_formula(start[1], grads[1], 0.01, 0.8, 0.99,
                                                              1e-3, 0.1), rtol=1e-10)


def test_cifar10_is_found_through_the_environment_and_else_the_digits_are_used(tmp_path,
                                                                              monkeypatch):
    folder = tmp_path / "mine" / "train" / "cat"
    folder.mkdir(parents=True)
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(folder / f"{i:04d}.jpg")
    monkeypatch.setenv("TINYRESNET_CIFAR10", str(tmp_path / "mine"))
    assert public.find_cifar10() == ("folder", tmp_path / "mine")
    x_train, y_train, x_test, y_test = public.cifar10_subset("folder", tmp_path / "mine", 2, 1)
    assert x_train.shape == (2, 3, 32, 32) and x_test.shape == (1, 3, 32, 32)
    assert x_train.dtype == np.float32 and list(y_train) == [0, 0]
    params = dict(dataset="digits", digits_min_accuracy=0.9)
    *_, channels, used, required = public.training_data(params)
    assert channels == 1 and used.startswith("the built-in 8x8 digits") and required == 0.9
    monkeypatch.setenv("TINYRESNET_CIFAR10", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(public, "__file__", str(tmp_path / "tests" / "public_tests.py"))
    assert public.find_cifar10() is None
    *_, used, _ = public.training_data(dict(params, dataset="auto"))
    assert "no CIFAR-10 found" in used
    with pytest.raises(FileNotFoundError, match="TINYRESNET_CIFAR10"):
        public.training_data(dict(params, dataset="cifar10"))
