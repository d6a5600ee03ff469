"""ImageFolder: a dataset of image files sorted into one sub-folder per class, as torchvision's.

    root/cat/001.png
    root/cat/002.jpg
    root/dog/xyz.jpeg

Classes are the sub-folder names in sorted order (``class_to_idx = {"cat": 0, "dog": 1}``); every
file with an image extension below a class folder (sub-folders included) is a sample.  Images are
decoded with Pillow and converted to RGB when they are read, so a large folder costs nothing up
front; the DataLoader's prefetch thread decodes the next batch while the current one trains.
Folders and files whose names start with a dot (``.ipynb_checkpoints``, ``.DS_Store``) are skipped.
"""
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["ImageFolder", "IMG_EXTENSIONS", "load_image"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


class ImageFolder:
    """Samples ``(transform(image), class_index)`` from a folder of class folders.

    Parameters
    ----------
    root : path of the folder holding one sub-folder per class
    transform : callable applied to each RGB PIL image, e.g.
        ``Compose([Resize(256), CenterCrop(224), ToArray(), Normalize(mean, std)])``; None gives
        the PIL image itself

    Attributes
    ----------
    classes : list of class names (sorted sub-folder names)
    class_to_idx : dict, class name -> index
    samples : list of (path, class_index), sorted by class then path
    targets : list of the class indices, one per sample
    """

    def __init__(self, root, transform=None):
        self.root = Path(root).expanduser()
        self.transform = transform
        if not self.root.is_dir():
            what = "is not a folder" if self.root.exists() else "does not exist"
            raise FileNotFoundError(
                f"ImageFolder: '{self.root}' {what}; expected a folder with one sub-folder of "
                "images per class (root/<class>/<image>.png)"
            )
        self.classes = sorted(
            entry.name for entry in os.scandir(self.root)
            if entry.is_dir() and not entry.name.startswith(".")
        )
        if not self.classes:
            raise FileNotFoundError(
                f"ImageFolder: no class sub-folders in '{self.root}'; expected "
                "root/<class>/<image>.png, one sub-folder per class"
            )
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        for name in self.classes:
            files = _image_files(self.root / name)
            if not files:
                raise FileNotFoundError(
                    f"ImageFolder: class folder '{self.root / name}' holds no image files "
                    f"(extensions: {', '.join(IMG_EXTENSIONS)}); remove it or add images"
                )
            self.samples += [(path, self.class_to_idx[name]) for path in files]
        self.targets = [label for _, label in self.samples]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        image = load_image(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self):
        return f"ImageFolder(root='{self.root}', samples={len(self)}, classes={len(self.classes)})"


def load_image(path):
    """Decode an image file to an RGB PIL image; ValueError naming the file when it cannot."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # Pillow raises any of these for truncated or corrupt files.
        raise ValueError(f"ImageFolder: cannot read image '{path}': {exc}") from exc


def _image_files(folder):
    """Image files below ``folder``, sorted, skipping hidden files and folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [
            Path(dirpath) / f for f in filenames
            if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)
        ]
    return sorted(found)
