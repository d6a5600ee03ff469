"""A small trained network for the experiments that need one (paths, lesion, landscape, signal).

CIFAR ResNet-``depth`` (or its plain twin, ``skip=False``) trained on the built-in 8x8 digits with
SGD + momentum and per-iteration cosine decay (optim.CosineAnnealingLR).  A plain loop rather than
train.fit: the experiments want a model in a few seconds, with no files written.
"""
import numpy as np

from .. import models, nn, optim
from ..data import load_digits
from ..random import manual_seed

__all__ = ["train_on_digits"]


def train_on_digits(skip=True, depth=20, epochs=3, batch_size=64, lr=0.1, seed=0):
    """Train a CIFAR-style net on the digits; returns the model in eval mode.

    The sample order comes from ``seed`` and so does the initialisation (tinyresnet.manual_seed):
    the same arguments give the same model.
    """
    train, _ = load_digits()
    manual_seed(seed)
    model = models.cifar_resnet(depth, skip=skip, in_channels=1)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    steps = len(train.labels) // batch_size
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = order.permutation(len(train.labels))
        for i in range(steps):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            model.zero_grad()
            loss_fn(model(train.images[idx]), train.labels[idx])
            model.backward(loss_fn.backward())
            opt.step()
            schedule.step()
    return model.eval()
