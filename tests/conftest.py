"""Shared fixtures: seeded generators, float64 by default for gradient checks, torch when present."""
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


# The float64 checks (gradient checks, float64 parity): .ci/run runs them a second time under
# another OpenBLAS kernel (pytest -m float64), so a tolerance that holds on one kernel only fails
# in CI and not on a user's machine.
FLOAT64_CHECKS = ("tests/functional/", "tests/nn/", "tests/models/", "tests/test_gradcheck.py",
                  "tests/assign/test_selfvalidation.py")


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        if path.startswith(FLOAT64_CHECKS):
            item.add_marker(pytest.mark.float64)
