"""Build tinyresnet/data/digits.npz, the built-in dataset, from scikit-learn's bundled copy.

    python3 scripts/make_digits.py            # needs scikit-learn; no network

The UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin, C. Kaynak, 1998;
CC BY 4.0, see tinyresnet/data/DIGITS_LICENSE.txt): 1,797 8x8 images with integer pixels 0..16.
The archive keeps the pixels as uint8 and fixes the train/test split once, here, so every install
and every NumPy version sees the same split: stratified by class, 450 test images, seed 0.
"""
import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = Path(__file__).resolve().parents[1] / "tinyresnet" / "data" / "digits.npz"
TEST_SIZE = 450
SEED = 0


def build():
    """(images uint8 (1797, 8, 8), labels uint8 (1797,), is_test bool (1797,))."""
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)
    if not np.array_equal(images, bunch.images):
        raise ValueError("make_digits: expected integer pixels 0..16 in scikit-learn's digits")
    labels = bunch.target.astype(np.uint8)
    _, test_index = train_test_split(
        np.arange(len(labels)), test_size=TEST_SIZE, stratify=labels, random_state=SEED
    )
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_index] = True
    return images, labels, is_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT})")
    args = parser.parse_args()
    images, labels, is_test = build()
    np.savez_compressed(args.out, images=images, labels=labels, is_test=is_test)
    print(f"wrote {args.out}: {len(labels)} images, {int(is_test.sum())} in the test split")


if __name__ == "__main__":
    main()
