"""examples/train_imagefolder.py runs as written on a small generated image folder."""
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_imagefolder.py"


def make_image_folder(root, classes=("cat", "dog"), per_class=4, size=(40, 36)):
    """Class folders of small RGB PNGs: reddish cats, bluish dogs."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (*size, 3), dtype=np.uint8)
            pixels[..., c % 3] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def load_example():
    spec = importlib.util.spec_from_file_location("train_imagefolder", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_trains_and_prints_the_loss_per_epoch(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "photos")
    losses = load_example().main(["--data", str(folder), "--image-size", "32", "--epochs", "2",
                                  "--batch-size", "4"])
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out] == ["Epoch 1", "Epoch 2"]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    # Two classes, untrained: the first epoch's loss is near log(2).
    assert 0.1 < losses[0] < 3.0
    assert out[0] == f"Epoch 1, Loss: {losses[0]:.4f}"
