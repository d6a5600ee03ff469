"""Throughput of data-parallel training, and the all-reduce's share of a step.

    mpiexec -n P python3 benchmarks/bench_data_parallel.py [--model cifar_resnet20]
        [--batch-size 64] [--image-size 32] [--steps 20] [--warmup 3] [--json out.json]

Each rank trains ``--steps`` steps of the model on random images (its B/P shard of the global
batch B), timing the whole step and, separately, the gradient Allreduce (flat buffer, one per
step).  Rank 0 prints the global images per second (median step) and the Allreduce's share of the
step.  One BLAS thread per process (set OPENBLAS_NUM_THREADS=1), so P processes use P cores.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyresnet import distributed, models, nn, optim  # noqa: E402
from tinyresnet.random import manual_seed  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="rank 0 writes the figures here")
    args = parser.parse_args()
    comm = distributed.world()
    distributed.abort_on_error(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} is not divisible by {size} processes")
    manual_seed(0)
    model = models.get_model(args.model, num_classes=10)
    replicas = distributed.Replicas(model, comm)
    replicas.broadcast_state()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(rank)
    local = args.batch_size // size
    x = rng.standard_normal((local, 3, args.image_size, args.image_size)).astype(np.float32)
    y = rng.integers(0, 10, local)
    steps, reduces = [], []
    for i in range(args.warmup + args.steps):
        comm.Barrier()
        started = time.perf_counter()
        loss_fn(model(x), y)
        model.zero_grad()
        model.backward(loss_fn.backward())
        reduce_started = time.perf_counter()
        replicas.average_gradients()
        reduced = time.perf_counter()
        opt.step()
        if i >= args.warmup:
            steps.append(time.perf_counter() - started)
            reduces.append(reduced - reduce_started)
    step = comm.allreduce(statistics.median(steps)) / size  # the mean over ranks of each rank's median step
    reduce = comm.allreduce(statistics.median(reduces)) / size
    if rank == 0:
        n_params = sum(p.size for p in model.parameters())
        result = {"processes": size, "model": args.model, "global_batch": args.batch_size,
                  "image_size": args.image_size, "step_s": step,
                  "images_per_s": args.batch_size / step, "allreduce_s": reduce,
                  "allreduce_share": reduce / step, "parameters": n_params}
        print(f"{size} process(es), {args.model}, global batch {args.batch_size} "
              f"({local} per process), {args.image_size}x{args.image_size}: "
              f"{result['images_per_s']:.0f} images/s, step {1e3 * step:.1f} ms, Allreduce of "
              f"{n_params:,} gradients {1e3 * reduce:.2f} ms ({100 * reduce / step:.1f}% of the step)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f)


if __name__ == "__main__":
    main()
