"""Fixtures for the viz tests: one BLAS thread, and small networks trained once per session."""
import contextlib

import pytest

from tinyresnet import viz
from tinyresnet.data import load_digits


@pytest.fixture(autouse=True, scope="package")
def _one_blas_thread():
    """The matrices here are small: on a shared machine idle BLAS threads spinning for a core make
    every step several times slower (7x measured on 2 busy cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limit = contextlib.nullcontext()
    else:
        limit = threadpool_limits(limits=1, user_api="blas")
    with limit:
        yield


def train_digits_model(skip, **kwargs):
    """(trained model in eval mode, test images, test labels): see viz.train_on_digits."""
    _, test = load_digits()
    return viz.train_on_digits(skip=skip, **kwargs), test.images, test.labels


@pytest.fixture(scope="session")
def trained_resnet20():
    """ResNet-20 after 3 epochs on the digits (~98% test accuracy); shared, so leave it as found."""
    return train_digits_model(skip=True)


@pytest.fixture(scope="session")
def trained_plain20():
    return train_digits_model(skip=False)
