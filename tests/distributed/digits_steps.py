"""A few SGD steps of a CIFAR ResNet on the digits, data parallel or as a one-process reference.

Run under ``mpiexec -n P`` with ``--mode parallel`` (every rank trains on its shard of each
global batch; rank 0 writes the parameters), or alone with ``--mode whole`` (the global batch in
one forward) or ``--mode halves`` (the global batch as P pieces, each normalized by batch norm
on its own and their gradients averaged: what data parallelism without SyncBatchNorm computes).
``--reverse`` gives the float32 noise floor: the same batch in reverse order rounds differently.
"""
import argparse

import numpy as np

import tinyresnet as tr
from tinyresnet import data, models, nn, optim
from tinyresnet.train.recipes import build_datasets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("parallel", "whole", "halves"), required=True)
    parser.add_argument("--pieces", type=int, default=2, help="halves: P")
    parser.add_argument("--sync-bn", action="store_true")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--reverse", action="store_true",
                        help="whole: the batch in reverse order (the same maths, other roundings)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)

    comm, rank, size = None, 0, 1
    if args.mode == "parallel":
        from tinyresnet import distributed

        comm = distributed.world()
        distributed.abort_on_error(comm)
        rank, size = comm.Get_rank(), comm.Get_size()
    bundle = build_datasets("digits", seed=0)
    tr.manual_seed(0)
    model = models.get_model(args.model, num_classes=10, in_channels=1)
    if dtype == np.float64:
        model = model.double()
    if args.sync_bn:
        model = nn.convert_sync_batchnorm(model, comm)
    loader = data.DataLoader(bundle.train, batch_size=args.batch_size, shuffle=True,
                             drop_last=True, seed=0, num_replicas=size, rank=rank)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    replicas = None
    if comm is not None:
        from tinyresnet.distributed import Replicas

        replicas = Replicas(model, comm)
        replicas.broadcast_state()
    model.train()
    for step, (x, y) in zip(range(args.steps), loader):
        x = x.astype(dtype)
        if args.reverse:
            x, y = x[::-1].copy(), y[::-1].copy()
        model.zero_grad()
        if args.mode == "halves":
            for xs, ys in zip(np.split(x, args.pieces), np.split(y, args.pieces)):
                loss_fn(model(xs), ys)
                model.backward(loss_fn.backward() / args.pieces)
        else:
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
        if replicas is not None:
            replicas.average_gradients()
        opt.step()
    if rank == 0:
        np.savez(args.out, **{name: p.data for name, p in model.named_parameters()})


if __name__ == "__main__":
    main()
