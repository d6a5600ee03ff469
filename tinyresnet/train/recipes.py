"""Data recipes: the datasets and transforms ``tinyresnet train``, ``eval`` and ``predict`` use.

A recipe is summed up in a JSON-able *spec* that every checkpoint carries (``extra["data"]``), so
that evaluation and prediction preprocess images exactly as training did::

    {"dataset": "imagefolder", "recipe": "cifar", "root": "/data/cifar10/train", "in_channels": 3,
     "image_size": 32, "resize": 32, "mean": [0.491, ...], "std": [0.247, ...],
     "classes": ["airplane", ...], "val_fraction": 0.1, "seed": 0}

The recipe goes by the images, not by how they are stored:

========  ==============================================  ========================================
recipe    training transform                              evaluation transform
========  ==============================================  ========================================
digits    RandomCrop(8, padding=1), Normalize             Normalize
cifar     RandomCrop(H, padding=4), flip, Normalize       Normalize
          (whole batches at once, no resizing)
imagenet  RandomResizedCrop(size), flip, ToArray,         Resize(size * 256 / 224),
          Normalize (ImageNet statistics)                 CenterCrop(size), ToArray, Normalize
========  ==============================================  ========================================

``recipe="auto"`` gives the digits their own, the CIFAR archives the CIFAR recipe, and an image
folder the CIFAR recipe when its images are small (at most 64 pixels a side, as CIFAR's 32x32, see
``SMALL_IMAGE``) and the ImageNet recipe otherwise.  The CIFAR recipe normalises with the per-channel
mean and std of the training split (the CIFAR archives: the published CIFAR statistics), the
ImageNet recipe with ImageNet's.

The digits' one-pixel random shifts are their only augmentation (a flipped digit is another
symbol).  An image folder with ``train/`` and ``val/`` (or ``test/``) sub-folders is used as split;
otherwise a seeded ``val_fraction`` of it is held out for validation (CIFAR-10's 50,000 training
images with the default 0.1: 45,000 / 5,000, the split of the ResNet paper, Section 4.2).  A folder
of small images is decoded once into an array cache (:mod:`tinyresnet.data.cache`), so later
epochs and runs read no image file.
"""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import data
from ..data import transforms as T
from ..data.batch_transforms import BatchTransform
from ..data.cache import load_folder

__all__ = ["DATASETS", "RECIPES", "SMALL_IMAGE", "DataBundle", "Subset", "build_datasets",
           "choose_recipe", "eval_dataset", "load_image_for"]

DATASETS = ("digits", "cifar10", "cifar100", "imagefolder")
RECIPES = ("auto", "cifar", "imagenet")
SMALL_IMAGE = 64
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
_PROBES = 16


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


def _spec_recipe(spec):
    """The spec's recipe; checkpoints written before recipes existed went by the dataset."""
    default = {"digits": "digits", "imagefolder": "imagenet"}.get(spec["dataset"], "cifar")
    return spec.get("recipe") or default


def _probe_size(folder):
    """The largest side among up to _PROBES images spread over the folder (headers only)."""
    picks = np.linspace(0, len(folder) - 1, min(_PROBES, len(folder))).astype(int)
    largest = 0
    for i in picks:
        path = folder.samples[i][0]
        try:
            with Image.open(path) as image:
                largest = max(largest, *image.size)
        except OSError as err:
            raise ValueError(f"cannot read image '{path}': {err}") from err
    return largest


def choose_recipe(dataset, recipe="auto", largest_side=None):
    """The recipe ``auto`` stands for: by dataset, and for image folders by image size.

    Parameters
    ----------
    dataset : one of DATASETS
    recipe : 'auto', 'cifar' or 'imagenet' ('digits' for the digits)
    largest_side : the largest image side of an image folder, in pixels

    Returns 'digits', 'cifar' or 'imagenet'; ValueError for an unknown recipe or one given to the
    digits, which have their own.
    """
    if recipe not in RECIPES and recipe != "digits":
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    if dataset == "digits":
        if recipe not in ("auto", "digits"):
            raise ValueError(f"the digits have their own recipe; --recipe {recipe} does not apply")
        return "digits"
    if recipe != "auto":
        return recipe
    if dataset == "imagefolder":
        return "cifar" if largest_side is not None and largest_side <= SMALL_IMAGE else "imagenet"
    return "cifar"


def _channel_stats(images):
    """Per-channel mean and std of uint8 (N, H, W, C) images in [0, 1] units, summed in float64
    chunks (a float copy of CIFAR would take 1.2 GB)."""
    channels = images.shape[-1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(images), 4096):
        chunk = images[start:start + 4096].reshape(-1, channels).astype(np.float64)
        total += chunk.sum(axis=0)
        squares += np.square(chunk).sum(axis=0)
        count += len(chunk)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0))
    return (mean / 255).tolist(), (std / 255).tolist()


def _eval_transform(spec):
    """Per-image evaluation transform of the digits and ImageNet recipes (CIFAR's is a
    BatchTransform, see _set_transforms)."""
    normalize = T.Normalize(spec["mean"], spec["std"])
    if _spec_recipe(spec) == "digits":
        return normalize
    return T.Compose([T.Resize(spec["resize"]), T.CenterCrop(spec["image_size"]), T.ToArray(),
                      normalize])


def _train_transform(spec):
    """Per-image training transform of the digits and ImageNet recipes."""
    normalize = T.Normalize(spec["mean"], spec["std"])
    size = spec["image_size"]
    if _spec_recipe(spec) == "digits":
        return T.Compose([T.RandomCrop(size, padding=1), normalize])
    return T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToArray(),
                      normalize])


def _set_transforms(train, test, spec, augment):
    """Give in-memory uint8 datasets the recipe's transforms: whole-batch for the CIFAR recipe."""
    if _spec_recipe(spec) == "cifar":
        evaluation = BatchTransform(spec["mean"], spec["std"])
        train.batch_transform = BatchTransform(spec["mean"], spec["std"], padding=4) \
            if augment else evaluation
        test.batch_transform = evaluation
        train.transform = test.transform = None
    else:
        train.transform = _train_transform(spec) if augment else _eval_transform(spec)
        test.transform = _eval_transform(spec)
        train.batch_transform = test.batch_transform = None


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


def _check_same_classes(train, test, train_dir, val_dir):
    if test.classes != train.classes:
        raise ValueError(
            f"image folder: '{train_dir}' and '{val_dir}' hold different class folders "
            f"({len(train.classes)} vs {len(test.classes)} classes)"
        )


def _imagefolder(spec, train_transform, eval_transform):
    """Train and validation ImageFolders, decoding every image file when it is read."""
    train_dir, val_dir = _folder_split(spec)
    if val_dir is not None:
        train = data.ImageFolder(train_dir, transform=train_transform)
        test = data.ImageFolder(val_dir, transform=eval_transform)
        _check_same_classes(train, test, train_dir, val_dir)
        return train, test
    full = data.ImageFolder(train_dir, transform=train_transform)
    if len(full) < 2:
        raise ValueError(f"image folder '{train_dir}' holds {len(full)} image; need at least 2")
    train_idx, val_idx = _holdout(len(full), spec["val_fraction"], spec["seed"])
    held_out = data.ImageFolder(train_dir, transform=eval_transform)
    return Subset(full, train_idx), Subset(held_out, val_idx)


def _cached_imagefolder(spec, cache_dir, progress):
    """Train and validation ArrayDatasets of uint8 pixels, from the decode-once cache."""
    train_dir, val_dir = _folder_split(spec)
    images, labels, folder, _ = load_folder(train_dir, cache_dir, progress)
    if val_dir is not None:
        test_images, test_labels, test_folder, _ = load_folder(val_dir, cache_dir, progress)
        _check_same_classes(folder, test_folder, train_dir, val_dir)
    else:
        if len(labels) < 2:
            raise ValueError(f"image folder '{train_dir}' holds {len(labels)} image; need at least 2")
        train_idx, val_idx = _holdout(len(labels), spec["val_fraction"], spec["seed"])
        test_images, test_labels = images[val_idx], labels[val_idx]
        images, labels = images[train_idx], labels[train_idx]
    classes = list(folder.classes)
    return (data.ArrayDataset(images, labels, classes=classes),
            data.ArrayDataset(test_images, test_labels, classes=classes))


def build_datasets(dataset="digits", root=None, image_size=None, augment=True, val_fraction=0.1,
                   seed=0, recipe="auto", stats=None, cache_dir=None, progress=False):
    """The training and validation datasets of a recipe, and its spec.

    Parameters
    ----------
    dataset : 'digits', 'cifar10', 'cifar100' or 'imagefolder'
    root : folder of the CIFAR files or of the image folder (unused for digits)
    image_size : side of the square images the model sees: the ImageNet recipe's crop (default
        224); the CIFAR recipe does not resize, so there it must be the images' own side or None
    augment : use the training transform (False: the evaluation transform for both splits)
    val_fraction, seed : the held-out share of an unsplit image folder, and its seed
    recipe : 'auto', 'cifar' or 'imagenet' (module docstring)
    stats : (mean, std) to normalise with instead of the training split's (a checkpoint's own,
        when evaluating); CIFAR recipe on image folders only
    cache_dir : where the decode-once cache of a folder of small images lives (default
        :func:`tinyresnet.data.cache.default_cache_dir`)
    progress : show a progress bar while a folder is decoded into the cache

    Returns
    -------
    DataBundle
    """
    _check_dataset(dataset)
    spec = {"dataset": dataset, "recipe": None, "root": None, "val_fraction": None,
            "seed": int(seed)}
    if dataset == "digits":
        spec["recipe"] = choose_recipe(dataset, recipe)
        train, test = data.load_digits()
        spec.update(in_channels=1, image_size=8, resize=8, classes=list(train.classes),
                    mean=[float(train.images.mean())], std=[float(train.images.std())])
        train.transform = _train_transform(spec) if augment else _eval_transform(spec)
        test.transform = _eval_transform(spec)
        return DataBundle(train, test, spec)
    path = _root(root, dataset)
    spec["root"] = str(path.resolve())
    if dataset in ("cifar10", "cifar100"):
        spec["recipe"] = choose_recipe(dataset, recipe)
        reader = data.CIFAR10 if dataset == "cifar10" else data.CIFAR100
        train, test = reader(path, train=True), reader(path, train=False)
        native, mean, std = (32, 32), list(CIFAR_MEAN[dataset]), list(CIFAR_STD[dataset])
    else:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        spec["val_fraction"] = float(val_fraction)
        native = _probe_size(data.ImageFolder(_folder_split(spec)[0]))
        spec["recipe"] = choose_recipe(dataset, recipe, native)
        train = test = None
        if native <= SMALL_IMAGE or spec["recipe"] == "cifar":
            train, test = _cached_imagefolder(spec, cache_dir, progress)
            native = train.images.shape[1:3]
        mean, std = None, None
    if spec["recipe"] == "cifar":
        height, width = (int(n) for n in native)
        if image_size is not None and int(image_size) != height:
            raise ValueError(
                f"the CIFAR recipe does not resize: the images are {width}x{height}, so "
                f"--image-size must be {height} or left out (or use --recipe imagenet)"
            )
        if mean is None:
            mean, std = stats if stats is not None else _channel_stats(train.images)
        # image_size: the height, as for the other recipes; image_width for non-square images.
        spec.update(in_channels=3, image_size=height, image_width=width, resize=height,
                    mean=list(mean), std=list(std))
    else:
        size = int(image_size or 224)
        spec.update(in_channels=3, image_size=size, resize=int(math.floor(size * 256 / 224)),
                    mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    if train is None:
        train, test = _imagefolder(spec, _train_transform(spec) if augment else
                                   _eval_transform(spec), _eval_transform(spec))
    else:
        _set_transforms(train, test, spec, augment)
    spec["classes"] = list(train.classes)
    return DataBundle(train, test, spec)


def eval_dataset(spec, root=None, split="test", cache_dir=None, progress=False):
    """The ``split`` ('test' or 'train') of a spec's dataset with its evaluation transform;
    ``root`` overrides the folder recorded in the spec."""
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    spec = dict(spec)
    if root is not None:
        spec["root"] = str(_root(root, spec["dataset"]).resolve())
    recipe = _spec_recipe(spec)
    stats = (spec["mean"], spec["std"]) if spec["dataset"] == "imagefolder" else None
    bundle = build_datasets(spec["dataset"], spec["root"], spec["image_size"], augment=False,
                            val_fraction=spec.get("val_fraction") or 0.1, seed=spec["seed"],
                            recipe="auto" if recipe == "digits" else recipe,
                            stats=stats if recipe == "cifar" else None, cache_dir=cache_dir,
                            progress=progress)
    return bundle.train if split == "train" else bundle.test, bundle.spec


def load_image_for(path, spec):
    """Read an image file and preprocess it as the spec's evaluation does: (C, H, W) float32.

    Digits: the image becomes grayscale, is inverted when its background is light (the digits
    are light strokes on black), and is box-averaged down to 8x8, which is how the digits
    themselves were made from 32x32 bitmaps.  CIFAR recipe: an image of another size than the
    training images is resized to theirs first (the training images themselves never are).
    """
    if _spec_recipe(spec) == "digits":
        try:
            with Image.open(path) as image:
                # Mode "F" (float) so the box average is not rounded back to 8 bits.
                gray = image.convert("L").convert("F")
        except OSError as e:
            raise ValueError(f"cannot read image '{path}': {e}") from e
        x = np.asarray(gray.resize((8, 8), Image.Resampling.BOX), dtype=np.float32) / 255
        if x.mean() > 0.5:
            x = 1 - x
        return T.Normalize(spec["mean"], spec["std"])(x[None])
    image = data.load_image(path)
    size = spec["image_size"]
    normalize = T.Normalize(spec["mean"], spec["std"])
    if _spec_recipe(spec) == "cifar":
        height, width = size, spec.get("image_width", size)
        steps = [] if image.size == (width, height) else [T.Resize((height, width))]
        return T.Compose(steps + [T.ToArray(), normalize])(image)
    return T.Compose([T.Resize(spec["resize"]), T.CenterCrop(size), T.ToArray(), normalize])(image)
