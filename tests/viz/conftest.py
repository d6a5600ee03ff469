"""Fixtures for the viz tests: one BLAS thread, and small networks trained once per session."""
import contextlib
import math

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import models, nn, optim
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


def train_digits_model(skip, depth=20, epochs=3, batch_size=64, lr=0.1, seed=0):
    """CIFAR ResNet-``depth`` (or its plain twin) trained on the 8x8 digits: SGD with momentum,
    cosine decay; returns (model in eval mode, test images, test labels)."""
    train, test = load_digits()
    tr.manual_seed(seed)
    model = models.cifar_resnet(depth, skip=skip, in_channels=1)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    steps = len(train.labels) // batch_size
    for epoch in range(epochs):
        perm = rng.permutation(len(train.labels))
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (epoch * steps + i) / (epochs * steps)))
            idx = perm[i * batch_size:(i + 1) * batch_size]
            model.zero_grad()
            loss_fn(model(train.images[idx]), train.labels[idx])
            model.backward(loss_fn.backward())
            opt.step()
    return model.eval(), test.images, test.labels


@pytest.fixture(scope="session")
def trained_resnet20():
    """ResNet-20 after 3 epochs on the digits (~98% test accuracy); shared, so leave it as found."""
    return train_digits_model(skip=True)


@pytest.fixture(scope="session")
def trained_plain20():
    return train_digits_model(skip=False)
