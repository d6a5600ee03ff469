"""Data recipes: the datasets and transforms ``tinyresnet train``, ``eval`` and ``predict`` use.

A recipe is summed up in a JSON-able *spec* that every checkpoint carries (``extra["data"]``), so
that evaluation and prediction preprocess images exactly as training did::

    {"dataset": "digits", "root": None, "in_channels": 1, "image_size": 8, "resize": 8,
     "mean": [0.305], "std": [0.376], "classes": ["0", ..., "9"], "val_fraction": None, "seed": 0}

==========  =========================================  ============================================
dataset     training transform                         evaluation transform
==========  =========================================  ============================================
digits      RandomCrop(8, padding=1), Normalize        Normalize
cifar10/100 RandomCrop(32, padding=4), flip, ToArray,  ToArray, Normalize
            Normalize
imagefolder RandomResizedCrop(size), flip, ToArray,    Resize(size * 256 / 224), CenterCrop(size),
            Normalize (ImageNet statistics)            ToArray, Normalize
==========  =========================================  ============================================

The digits' one-pixel random shifts are their only augmentation (a flipped digit is another
symbol); mean and std are those of the digits' training split.  An image folder with ``train/``
and ``val/`` (or ``test/``) sub-folders is used as split; otherwise a seeded ``val_fraction`` of
it is held out for validation.
"""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data
from ..data import transforms as T

__all__ = ["DATASETS", "DataBundle", "Subset", "build_datasets", "eval_dataset", "load_image_for"]

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}


class Subset:
    """The samples of ``dataset`` at ``indices``, in that order (as torch.utils.data.Subset)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        self.classes = getattr(dataset, "classes", None)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


@dataclass
class DataBundle:
    """A training split, a validation/test split, and the spec that describes them."""

    train: object
    test: object
    spec: dict

    @property
    def classes(self):
        return self.spec["classes"]


def _check_dataset(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")


def _root(root, dataset):
    if root is None:
        raise ValueError(f"the {dataset} dataset needs --data PATH (the folder holding it)")
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data folder '{path}' does not exist")
    return path


def _eval_transform(spec):
    normalize = T.Normalize(spec["mean"], spec["std"])
    if spec["dataset"] == "digits":
        return normalize
    if spec["dataset"] == "imagefolder":
        return T.Compose([T.Resize(spec["resize"]), T.CenterCrop(spec["image_size"]), T.ToArray(),
                          normalize])
    return T.Compose([T.ToArray(), normalize])


def _train_transform(spec):
    normalize = T.Normalize(spec["mean"], spec["std"])
    size = spec["image_size"]
    if spec["dataset"] == "digits":
        return T.Compose([T.RandomCrop(size, padding=1), normalize])
    if spec["dataset"] == "imagefolder":
        return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToArray(),
                          normalize])
    return T.Compose([T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), T.ToArray(),
                      normalize])


def _folder_split(spec):
    """(train folder, val folder) when the image folder is already split, else (root, None)."""
    root = Path(spec["root"])
    for val in ("val", "test"):
        if (root / "train").is_dir() and (root / val).is_dir():
            return root / "train", root / val
    return root, None


def _holdout(n, fraction, seed):
    """Seeded (train indices, validation indices) of n samples, at least one of each."""
    n_val = min(max(1, int(round(n * fraction))), n - 1)
    order = np.random.default_rng(np.random.SeedSequence([seed, 20151210])).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _imagefolder(spec, train_transform, eval_transform):
    train_dir, val_dir = _folder_split(spec)
    if val_dir is not None:
        train = data.ImageFolder(train_dir, transform=train_transform)
        test = data.ImageFolder(val_dir, transform=eval_transform)
        if test.classes != train.classes:
            raise ValueError(
                f"image folder: '{train_dir}' and '{val_dir}' hold different class folders "
                f"({len(train.classes)} vs {len(test.classes)} classes)"
            )
        return train, test
    full = data.ImageFolder(train_dir, transform=train_transform)
    if len(full) < 2:
        raise ValueError(f"image folder '{train_dir}' holds {len(full)} image; need at least 2")
    train_idx, val_idx = _holdout(len(full), spec["val_fraction"], spec["seed"])
    held_out = data.ImageFolder(train_dir, transform=eval_transform)
    return Subset(full, train_idx), Subset(held_out, val_idx)


def build_datasets(dataset="digits", root=None, image_size=None, augment=True, val_fraction=0.1,
                   seed=0):
    """The training and validation datasets of a recipe, and its spec.

    Parameters
    ----------
    dataset : 'digits', 'cifar10', 'cifar100' or 'imagefolder'
    root : folder of the CIFAR files or of the image folder (unused for digits)
    image_size : side of the square images the model sees (imagefolder only; default 224)
    augment : use the training transform (False: the evaluation transform for both splits)
    val_fraction, seed : the held-out share of an unsplit image folder, and its seed

    Returns
    -------
    DataBundle
    """
    _check_dataset(dataset)
    spec = {"dataset": dataset, "root": None, "val_fraction": None, "seed": int(seed)}
    if dataset == "digits":
        train, test = data.load_digits()
        spec.update(in_channels=1, image_size=8, resize=8, classes=list(train.classes),
                    mean=[float(train.images.mean())], std=[float(train.images.std())])
    elif dataset in ("cifar10", "cifar100"):
        path = _root(root, dataset)
        reader = data.CIFAR10 if dataset == "cifar10" else data.CIFAR100
        train, test = reader(path, train=True), reader(path, train=False)
        spec.update(root=str(path.resolve()), in_channels=3, image_size=32, resize=32,
                    classes=list(train.classes), mean=list(CIFAR_MEAN[dataset]),
                    std=list(CIFAR_STD[dataset]))
    else:
        path = _root(root, dataset)
        size = int(image_size or 224)
        spec.update(root=str(path.resolve()), in_channels=3, image_size=size,
                    resize=int(math.floor(size * 256 / 224)), mean=list(IMAGENET_MEAN),
                    std=list(IMAGENET_STD), val_fraction=float(val_fraction))
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    eval_transform = _eval_transform(spec)
    train_transform = _train_transform(spec) if augment else eval_transform
    if dataset == "imagefolder":
        train, test = _imagefolder(spec, train_transform, eval_transform)
        spec["classes"] = list(train.classes)
    else:
        train.transform, test.transform = train_transform, eval_transform
    return DataBundle(train, test, spec)


def eval_dataset(spec, root=None, split="test"):
    """The ``split`` ('test' or 'train') of a spec's dataset with its evaluation transform;
    ``root`` overrides the folder recorded in the spec."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    spec = dict(spec)
    if root is not None:
        spec["root"] = str(_root(root, spec["dataset"]).resolve())
    bundle = build_datasets(spec["dataset"], spec["root"], spec["image_size"], augment=False,
                            val_fraction=spec.get("val_fraction") or 0.1, seed=spec["seed"])
    return bundle.train if split == "train" else bundle.test, bundle.spec


def load_image_for(path, spec):
    """Read an image file and preprocess it as the spec's evaluation does: (C, H, W) float32.

    Digits: the image becomes grayscale, is inverted when its background is light (the digits
    are light strokes on black), and is box-averaged down to 8x8, which is how the digits
    themselves were made from 32x32 bitmaps.
    """
    from PIL import Image

    if spec["dataset"] == "digits":
        try:
            with Image.open(path) as image:
                # Mode "F" (float) so the box average is not rounded back to 8 bits.
                gray = image.convert("L").convert("F")
        except OSError as e:
            raise ValueError(f"cannot read image '{path}': {e}") from None
        x = np.asarray(gray.resize((8, 8), Image.Resampling.BOX), dtype=np.float32) / 255
        if x.mean() > 0.5:
            x = 1 - x
        return T.Normalize(spec["mean"], spec["std"])(x[None])
    image = data.load_image(path)
    size = spec["image_size"]
    return T.Compose([T.Resize(spec["resize"]), T.CenterCrop(size), T.ToArray(),
                      T.Normalize(spec["mean"], spec["std"])])(image)
