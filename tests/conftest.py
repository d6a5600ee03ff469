"""Shared fixtures: seeded generators, float64 by default for gradient checks, torch when present."""
import os
from pathlib import Path

import numpy as np
import pytest

import tinyresnet as tr


@pytest.fixture
def rng():
    return np.random.default_rng(20150610)


@pytest.fixture(autouse=True)
def _seed_package():
    tr.manual_seed(0)
    yield


# The float64 checks (gradient checks, float64 parity with torch, the assignment whose hidden
# tests run a whole-network gradient check): .ci/run runs them a second time under another
# OpenBLAS kernel (pytest -m float64), so a tolerance that holds on one kernel only fails in CI
# and not on a user's machine.
FLOAT64_CHECKS = ("tests/functional/", "tests/nn/test_layers.py", "tests/nn/test_loss.py",
                  "tests/models/test_gradcheck_networks.py", "tests/models/test_parity_torch.py",
                  "tests/models/test_block.py", "tests/models/test_shortcut.py",
                  "tests/test_gradcheck.py",
                  "tests/assign/test_selfvalidation.py::test_reference_solution_gets_full_marks[A3]")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(FLOAT64_CHECKS):
            item.add_marker(pytest.mark.float64)


@pytest.fixture(autouse=True)
def _image_cache(tmp_path_factory, monkeypatch):
    """Image-folder caches of every test go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("TINYRESNET_CACHE", str(tmp_path_factory.mktemp("image-cache")))


def cifar10_train_folder():
    """CIFAR-10's training image folder (``<root>/train/<class>/*.jpg``), or None when absent: the
    root is $TINYRESNET_CIFAR10, else ``shared/data/cifar10`` beside the checkout (as laid out for
    development and CI).  Never committed; tests that need it skip without it."""
    root = os.environ.get("TINYRESNET_CIFAR10") or Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10"
    folder = Path(root) / "train"
    return folder if folder.is_dir() else None


@pytest.fixture
def cifar10_train():
    folder = cifar10_train_folder()
    if folder is None:
        pytest.skip("CIFAR-10's image folder is not on this machine (set TINYRESNET_CIFAR10)")
    return folder
