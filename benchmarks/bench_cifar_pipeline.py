"""How fast the CIFAR input pipeline makes batches, against how fast a ResNet-20 step eats them.

    python benchmarks/bench_cifar_pipeline.py --data /path/to/cifar10/train [--json out.json]

Measures, each in images per second of wall time and of CPU time (``time.process_time``, which
counts this process's own work and so stays meaningful on a machine shared with other jobs):

- ``cifar batch``: the CIFAR recipe as ``tinyresnet train`` runs it: the decoded array from the
  cache, the DataLoader's gather, per-sample generators, whole-batch crop/flip and normalisation;
- ``imagenet per-image``: the ImageNet recipe on the same decoded array, one image at a time
  (RandomResizedCrop through Pillow, flip, ToArray, Normalize);
- ``jpeg per-image``: what the loader did before the cache: decode every JPEG with Pillow and apply
  the CIFAR recipe image by image (on the first ``--jpeg-images`` images only);
- ``resnet20 step``: one training step of ResNet-20 at the same batch size (forward, backward,
  SGD), what consumes the batches.

The ratio ``cifar batch / resnet20 step`` is the headroom of the pipeline (the target: >= 5).
Without ``--data`` it runs on the 200-image slice committed in tests/data/cifar10_slice.
"""
import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import tinyresnet as tr
from tinyresnet import data, models, nn, optim
from tinyresnet.data import transforms as T
from tinyresnet.train.recipes import build_datasets

SLICE = Path(__file__).resolve().parents[1] / "tests" / "data" / "cifar10_slice"


def _rate(images, work):
    """(images/s wall, images/s CPU) of running work(); work() returns the images it made."""
    wall, cpu = time.perf_counter(), time.process_time()
    n = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"images": n, "wall_s": wall, "cpu_s": cpu, "images_per_s_wall": n / wall,
            "images_per_s_cpu": n / max(cpu, 1e-9)}


def _loader_rate(dataset, batch_size, batches):
    loader = data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, seed=0,
                             prefetch=False)

    def work():
        n = 0
        for (x, _), _ in zip(loader, range(batches)):
            n += len(x)
        return n

    return _rate(batch_size * batches, work)


def _step_rate(batch_size, steps):
    tr.manual_seed(0)
    model = models.cifar_resnet20()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch_size)

    def step():
        loss_fn(model(x), y)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()

    step()  # warm-up: first-call allocations

    def work():
        for _ in range(steps):
            step()
        return batch_size * steps

    return _rate(batch_size * steps, work)


def _jpeg_rate(folder, spec, count):
    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToArray(),
                        T.Normalize(spec["mean"], spec["std"])])
    images = data.ImageFolder(folder, transform=recipe)
    count = min(count, len(images))

    def work():
        for i in range(count):
            images[i]
        return count

    return _rate(count, work)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SLICE), help="a CIFAR-10 image folder")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=50, help="batches timed per pipeline")
    parser.add_argument("--steps", type=int, default=5, help="ResNet-20 steps timed")
    parser.add_argument("--jpeg-images", type=int, default=2000)
    parser.add_argument("--threads", type=int, help="BLAS threads for the step (default: BLAS's)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    bundle = build_datasets("imagefolder", args.data, recipe="cifar")
    batch_size = min(args.batch_size, len(bundle.train))
    imagenet = build_datasets("imagefolder", args.data, recipe="imagenet", image_size=32).train
    rows = {"cifar batch": _loader_rate(bundle.train, batch_size, args.batches),
            "imagenet per-image": _loader_rate(imagenet, batch_size, max(args.batches // 5, 1)),
            "jpeg per-image": _jpeg_rate(args.data, bundle.spec, args.jpeg_images)}
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads, user_api="blas"):
            rows["resnet20 step"] = _step_rate(batch_size, args.steps)
    else:
        rows["resnet20 step"] = _step_rate(batch_size, args.steps)
    step = rows["resnet20 step"]
    headroom = {clock: rows["cifar batch"][f"images_per_s_{clock}"] / step[f"images_per_s_{clock}"]
                for clock in ("wall", "cpu")}
    print(f"{'':20s} {'img/s wall':>11s} {'img/s CPU':>11s}")
    for name, row in rows.items():
        print(f"{name:20s} {row['images_per_s_wall']:11.0f} {row['images_per_s_cpu']:11.0f}")
    print(f"headroom of the cifar pipeline over the step: {headroom['wall']:.0f}x (wall), "
          f"{headroom['cpu']:.0f}x (CPU)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": {"processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "numpy": np.__version__},
            "folder": args.data, "batch_size": batch_size, "rows": rows, "headroom": headroom,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
