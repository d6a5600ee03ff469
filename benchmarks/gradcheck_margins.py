"""The whole-network gradient checks of the tests and assignments, measured: how far a correct
network's directional derivative is from the numerical one, how far a planted bug's is, and the
margin the tolerance keeps on both sides.

    OPENBLAS_CORETYPE=Sandybridge python3 benchmarks/gradcheck_margins.py   (one kernel per run)

Every case is built exactly as its test builds it (same model, input shape, seeds; the
assignment cases through their own suites' stored-input machinery) and checked with
``check_direction``'s defaults.  The planted bug is a wrong factor in one layer's backward: the
convolution halfway through the network returns half its true input gradient.  Prints a
Markdown table (docs/guides/gradcheck.md holds the measured one) whose kernel column is OpenBLAS's own
name for the kernel it picked.  Not a timing benchmark: the figures are errors, not seconds.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinyresnet as tr  # noqa: E402
from tinyresnet import models, nn  # noqa: E402
from tinyresnet.assign import harness  # noqa: E402
from tinyresnet.gradcheck import check_direction  # noqa: E402

TOL = 1e-6          # tests/models/test_gradcheck_networks.py, assignments/A3 [tolerances] directional
TEST_SEED = 20150610  # tests/conftest.py's rng fixture
A3_SEED = 2017        # assignments/A3/assignment.toml


def blas_kernel():
    """OpenBLAS's name for the kernel it runs (SkylakeX, Haswell, Sandybridge, ...)."""
    from threadpoolctl import threadpool_info

    np.ones((2, 2)) @ np.ones((2, 2))
    return ", ".join(sorted({i.get("architecture") or "?" for i in threadpool_info()
                             if i["user_api"] == "blas"})) or "unknown"


def _small_net():
    """tests/test_gradcheck.py's network."""
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)).double()


def _tests_case(name, kwargs, shape, mode="train"):
    def build():
        tr.manual_seed(0)  # tests/conftest.py seeds the package before every test
        model = models.get_model(name, **kwargs).double()
        model.train() if mode == "train" else model.eval()
        return model, np.random.default_rng(TEST_SEED).standard_normal(shape), {}
    return build


def _small_case(with_loss):
    def build():
        tr.manual_seed(0)
        model = _small_net()
        x = np.random.default_rng(TEST_SEED).standard_normal((2, 2, 4, 4))
        kwargs = dict(loss_fn=nn.CrossEntropyLoss(0.1), labels=np.array([1, 3])) if with_loss else {}
        return model, x, kwargs
    return build


def _cli_case(name, size):
    """``tinyresnet gradcheck NAME``: seed 0, batch 2."""
    def build():
        tr.manual_seed(0)
        previous = tr.backend.default_dtype()
        tr.backend.set_default_dtype(np.float64)
        try:
            model = models.get_model(name, num_classes=10).double()
        finally:
            tr.backend.set_default_dtype(previous)
        return model, np.random.default_rng(0).standard_normal((2, 3, size, size)), {"seed": 0}
    return build


def _load_suite(kind):
    path = ROOT / "assignments" / "A3" / "tests" / f"{kind}_tests.py"
    spec = importlib.util.spec_from_file_location(f"a3_{kind}_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _a3_case(kind, test_name, index):
    """The network and input one A3 gradcheck case hands to ``directional_error``, captured by
    running the case as the grader does (record, then check with the recorded inputs)."""
    def build():
        module = _load_suite(kind)
        test = next(t for t in module.suite.tests if t.name == test_name)
        store, captured = {}, {}
        tolerances = {"output": 1e-7, "gradient": 1e-7, "directional": TOL}
        harness.run_case(test, index, "record", store, A3_SEED, tolerances, {"imagenet": True})

        def capture(net, x):
            captured.update(net=net, x=x)
            return 0.0
        module.directional_error = capture
        result = harness.run_case(test, index, "check", store, A3_SEED, tolerances,
                                  {"imagenet": True})
        if "net" not in captured:
            raise RuntimeError(f"A3 {test_name}[{index}] did not reach its gradient check: "
                               f"{result.status} {result.message}")
        return captured["net"], captured["x"], {}
    return build


CASES = [
    ("tests/test_gradcheck small net", _small_case(False)),
    ("tests/test_gradcheck small net, loss", _small_case(True)),
    ("tests/models cifar_resnet20", _tests_case("cifar_resnet20", {}, (2, 3, 16, 16))),
    ("tests/models cifar_resnet20-B", _tests_case("cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16))),
    ("tests/models preact_cifar_resnet20-B",
     _tests_case("preact_cifar_resnet20", {"shortcut": "B"}, (2, 3, 16, 16))),
    ("tests/models plain_cifar_resnet20", _tests_case("plain_cifar_resnet20", {}, (2, 3, 16, 16))),
    ("tests/models resnet18", _tests_case("resnet18", {"num_classes": 10}, (1, 3, 64, 64))),
    ("tests/models resnet50 (eval)",
     _tests_case("resnet50", {"num_classes": 10}, (1, 3, 64, 64), mode="eval")),
    ("tests/models preact_resnet18 (slow, batch 2)",
     _tests_case("preact_resnet18", {"num_classes": 10}, (2, 3, 64, 64))),
    ("tests/models resnet34 (slow, batch 2)",
     _tests_case("resnet34", {"num_classes": 10}, (2, 3, 64, 64))),
    ("tests/models preact_resnet50 (slow, eval, batch 1)",
     _tests_case("preact_resnet50", {"num_classes": 10}, (1, 3, 64, 64), mode="eval")),
    ("cli gradcheck cifar_resnet20", _cli_case("cifar_resnet20", 16)),
    ("cli gradcheck cifar_resnet20 8x8", _cli_case("cifar_resnet20", 8)),
    ("A3 public cifar_resnet8", _a3_case("public", "gradcheck", 0)),
    ("A3 public resnet18", _a3_case("public", "gradcheck", 1)),
    ("A3 hidden cifar_resnet20", _a3_case("hidden", "gradcheck_hidden", 0)),
    ("A3 hidden cifar_resnet20-B", _a3_case("hidden", "gradcheck_hidden", 1)),
    ("A3 hidden plain_cifar_resnet8", _a3_case("hidden", "gradcheck_hidden", 2)),
]


def plant_bug(model, factor=0.5):
    """Make the convolution halfway through ``model`` return ``factor`` times its input gradient."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    conv = convs[len(convs) // 2]
    right = conv.backward
    object.__setattr__(conv, "backward", lambda dy: factor * right(dy))
    return conv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run the cases whose name contains this text")
    args = parser.parse_args(argv)
    kernel = blas_kernel()
    print("| case | kernel | correct | planted bug | tolerance | margin (tol / correct) | "
          "margin (bug / tol) |")
    print("|---|---|---|---|---|---|---|")
    for name, build in CASES:
        if args.only and args.only not in name:
            continue
        model, x, kwargs = build()
        correct = check_direction(model, x.copy(), **kwargs).norm_error
        model, x, kwargs = build()
        plant_bug(model)
        bug = check_direction(model, x.copy(), **kwargs).norm_error
        margin = TOL / correct if correct > 0 else float("inf")
        print(f"| {name} | {kernel} | {correct:.1e} | {bug:.1e} | {TOL:.0e} | {margin:.0f}x | "
              f"{bug / TOL:.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
