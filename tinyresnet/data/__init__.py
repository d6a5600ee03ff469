"""Datasets, transforms and the DataLoader.

    train, test = data.load_digits()                      # built in, no download
    train = data.CIFAR10("~/data", train=True, transform=T.Compose([
        T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToArray(),
        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))]))
    folder = data.ImageFolder("photos/", transform=T.Compose([
        T.Resize(256), T.CenterCrop(224), T.ToArray(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]))
    loader = data.DataLoader(train, batch_size=128, shuffle=True, seed=0)
    for x, y in loader: ...                               # x (B, C, H, W) float32, y (B,) int64

(with ``from tinyresnet import data`` and ``from tinyresnet.data import transforms as T``).
"""
from . import transforms
from .batch_transforms import BatchTransform
from .cache import load_folder
from .cifar import CIFAR10, CIFAR100
from .dataset import ArrayDataset
from .digits import DIGITS_CLASSES, load_digits
from .imagefolder import IMG_EXTENSIONS, ImageFolder, load_image
from .loader import DataLoader, sample_seed

__all__ = [
    "transforms", "ArrayDataset", "load_digits", "DIGITS_CLASSES", "CIFAR10", "CIFAR100",
    "ImageFolder", "IMG_EXTENSIONS", "load_image", "DataLoader",
    "BatchTransform", "load_folder", "sample_seed",
]
