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


@pytest.fixture(autouse=True)
def _image_cache(tmp_path_factory, monkeypatch):
    """Image-folder caches of every test go to a temporary folder, never the user's cache."""
    monkeypatch.setenv("TINYRESNET_CACHE", str(tmp_path_factory.mktemp("image-cache")))
