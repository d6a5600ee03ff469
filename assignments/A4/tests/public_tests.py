"""A4 public tests: run them with ``python -m tinyresnet.assign check A4``.

The optimizer tests run a few steps of your optimizer on two parameters with a fixed sequence of
gradients and compare the parameters after every step with the reference's (which follows
``torch.optim.SGD`` and ``torch.optim.Adam``).  The training test trains a small CIFAR ResNet with
your SGD: on a CIFAR-10 subset when one is found, on the built-in 8x8 digits otherwise.
"""
import os
from pathlib import Path

import numpy as np
from PIL import Image

from tinyresnet import models, nn, optim
from tinyresnet.assign.harness import Suite
from tinyresnet.data import load_digits

suite = Suite()
SHAPES = [(3, 4), (5,)]
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


def run_steps(t, make, steps):
    start = [t.input(f"theta0_{i}", lambda rng, s=shape: rng.standard_normal(s))
             for i, shape in enumerate(SHAPES)]
    grads = [t.input(f"grads_{i}", lambda rng, s=shape: rng.standard_normal((steps,) + s))
             for i, shape in enumerate(SHAPES)]
    params = [nn.Parameter(s.copy()) for s in start]
    optimizer = make(params)
    history = [[] for _ in params]
    for k in range(steps):
        for p, g in zip(params, grads):
            p.grad = g[k].copy()
        optimizer.step()
        for p, h in zip(params, history):
            h.append(np.array(p.data, copy=True))
    return [np.stack(h) for h in history]


# ---- 2. SGD ---------------------------------------------------------------------------------------
@suite.test("sgd", cases=[dict(lr=0.1, momentum=0.9, weight_decay=0.01, steps=3)])
def sgd(t, lr, momentum, weight_decay, steps):
    values = run_steps(t, lambda ps: optim.SGD(ps, lr=lr, momentum=momentum,
                                               weight_decay=weight_decay), steps)
    for i, value in enumerate(values):
        t.expect(f"parameter {i} after each step", value)


# ---- 3. Adam --------------------------------------------------------------------------------------
@suite.test("adam", cases=[dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                                steps=3)])
def adam(t, lr, beta1, beta2, eps, weight_decay, steps):
    values = run_steps(t, lambda ps: optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=eps,
                                                weight_decay=weight_decay), steps)
    for i, value in enumerate(values):
        t.expect(f"parameter {i} after each step", value)


# ---- 4. training ----------------------------------------------------------------------------------
def cifar10_candidates():
    """Where a CIFAR-10 copy may be: $TINYRESNET_CIFAR10, then data/cifar10 and
    shared/data/cifar10 beside the current folder, this file's folder, or any folder above."""
    if os.environ.get("TINYRESNET_CIFAR10"):
        yield Path(os.environ["TINYRESNET_CIFAR10"])
    for base in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (base, *base.parents):
            yield folder / "data" / "cifar10"
            yield folder / "shared" / "data" / "cifar10"


def find_cifar10():
    """(kind, path) of the first CIFAR-10 copy found: an image folder (root/train/<class>/*.jpg)
    or the official archives; None when there is none."""
    for root in cifar10_candidates():
        if (root / "train").is_dir() and any((root / "train").iterdir()):
            return "folder", root
        for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py", "cifar-10-binary.tar.gz",
                     "cifar-10-batches-bin"):
            if (root / name).exists():
                return "archive", root
    return None


def cifar10_subset(kind, root, train_per_class, test_per_class):
    """Class-balanced (train, held-out) subsets as normalised float32 NCHW arrays and labels:
    the first images of each class train, the next ones are held out."""
    if kind == "archive":
        from tinyresnet.data import CIFAR10

        data = CIFAR10(root, train=True)
        images, labels = np.asarray(data.images), np.asarray(data.labels)
        picks = [np.flatnonzero(labels == c)[:train_per_class + test_per_class] for c in range(10)]
        pixels = [images[p] for p in picks]
    else:
        classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
        pixels = []
        for name in classes:
            files = sorted((root / "train" / name).iterdir())[:train_per_class + test_per_class]
            pixels.append(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))
    x_train, y_train, x_test, y_test = [], [], [], []
    for c, block in enumerate(pixels):
        x = ((block.astype(np.float32) / 255 - CIFAR_MEAN) / CIFAR_STD).transpose(0, 3, 1, 2)
        x_train.append(x[:train_per_class])
        x_test.append(x[train_per_class:])
        y_train += [c] * len(x[:train_per_class])
        y_test += [c] * len(x[train_per_class:])
    return (np.ascontiguousarray(np.concatenate(x_train)), np.array(y_train),
            np.ascontiguousarray(np.concatenate(x_test)), np.array(y_test))


def training_data(p):
    """(x_train, y_train, x_test, y_test, channels, what was used, accuracy required)."""
    found = find_cifar10() if p["dataset"] in ("auto", "cifar10") else None
    if found is not None:
        kind, root = found
        data = cifar10_subset(kind, root, p["train_per_class"], p["test_per_class"])
        used = (f"a CIFAR-10 subset from {root} ({len(data[0])} training and {len(data[2])} "
                f"held-out images)")
        return (*data, 3, used, p["cifar_min_accuracy"])
    if p["dataset"] == "cifar10":
        raise FileNotFoundError("dataset = 'cifar10' but no CIFAR-10 copy was found: set "
                                "TINYRESNET_CIFAR10 to its folder")
    train_set, test_set = load_digits()
    if p["dataset"] == "digits":
        used = "the built-in 8x8 digits (the configuration asks for them)"
    else:
        used = ("the built-in 8x8 digits (no CIFAR-10 found: set TINYRESNET_CIFAR10 to a folder "
                "holding train/<class>/*.jpg or the official archives)")
    return (train_set.images, train_set.labels, test_set.images, test_set.labels, 1, used,
            p["digits_min_accuracy"])


@suite.test("train", cases=[dict(model="cifar_resnet")], record=False)
def train(t, model):
    p = t.params
    x_train, y_train, x_test, y_test, channels, used, required = training_data(p)
    t.note(f"trained on {used}")
    net = models.cifar_resnet(p["depth"], in_channels=channels, num_classes=10)
    optimizer = optim.SGD(net.parameters(), lr=p["lr"], momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(p["epochs"]):
        # the last epoch at a tenth of the rate settles the weights (a one-step schedule)
        for group in optimizer.param_groups:
            group["lr"] = p["lr"] * (0.1 if epoch == p["epochs"] - 1 and p["epochs"] > 1 else 1)
        net.train()
        order = t.rng.permutation(len(x_train))
        for start in range(0, len(x_train), p["batch_size"]):
            batch = order[start:start + p["batch_size"]]
            loss = loss_fn(net(x_train[batch]), y_train[batch])
            t.check(np.isfinite(loss), f"trained on {used}: the training loss became {loss} in "
                                       f"epoch {epoch + 1} (is your step's sign right?)")
            net.zero_grad()
            net.backward(loss_fn.backward())
            optimizer.step()
    net.eval()
    with nn.no_grad():
        predicted = np.concatenate([net(x_test[i:i + 100]).argmax(axis=1)
                                    for i in range(0, len(x_test), 100)])
    accuracy = float((predicted == y_test).mean())
    t.note(f"trained on {used}: held-out accuracy {accuracy:.1%} after {p['epochs']} epochs "
           f"(required {required:.0%})")
    t.check(accuracy >= required,
            f"trained on {used}: held-out accuracy {accuracy:.1%} after {p['epochs']} epochs, "
            f"below the {required:.0%} required: check your SGD's momentum and weight decay")
