"""The ``tinyresnet`` command: train, eval, predict, summary, gradcheck (and the course
assignments' assign, check, grade, from tinyresnet.assign).

    tinyresnet train                                  # CIFAR ResNet-20 on the built-in digits
    tinyresnet train --dataset cifar10 --data ~/data --epochs 160 --schedule multistep
    tinyresnet train --dataset imagefolder --data cifar10/train --schedule short --epochs 3
    tinyresnet data prepare cifar10/train             # decode a folder once into the cache
    tinyresnet data pack cifar10/train c.npz          # the folder's files as one file, to carry
    tinyresnet eval runs/digits-cifar_resnet20/best.npz
    tinyresnet predict --checkpoint runs/digits-cifar_resnet20/best.npz seven.png
    tinyresnet summary resnet50
    tinyresnet gradcheck cifar_resnet20

Every error a user can cause (a missing folder, an unknown model, a checkpoint that does not fit)
is printed as one line on stderr with exit status 2; set TINYRESNET_DEBUG=1 for the traceback.
"""
import argparse
import contextlib
import logging
import os
import sys
import time

import numpy as np

from . import __version__, functional as F, models, nn, optim
from .backend import default_dtype, set_default_dtype, to_device
from .random import manual_seed

__all__ = ["main", "build_parser"]

DEFAULT_MODEL = "cifar_resnet20"
_EPILOG = ("Errors are reported in one line; set TINYRESNET_DEBUG=1 to see the full traceback.")


# ---- helpers -----------------------------------------------------------------------------------
class UsageError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def _model_kwargs(num_classes, in_channels):
    return {"num_classes": int(num_classes), "in_channels": int(in_channels)}


def _build_model(name, kwargs):
    if name not in models.list_models():
        raise UsageError(
            f"unknown model {name!r}; choose one of: {', '.join(models.list_models())}"
        )
    return models.get_model(name, **kwargs)


def _default_input_size(name):
    return 32 if "cifar" in name else 224


def _threads(value):
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {value!r}")
    return n


@contextlib.contextmanager
def _cpu_threads(args, dataset, ranks=1):
    """Run the ops on --threads threads (``functional.set_num_threads``), and limit BLAS's own
    pool to as many for the NumPy code outside the ops; both are restored afterwards.

    'auto' means one thread for the digits: their arrays are too small for threads to pay off.
    Under --distributed, the cores shared out among the ``ranks`` processes (a machine's ranks
    would otherwise each start a thread per core).  Otherwise the defaults stay: the ops'
    (``functional.get_num_threads``), BLAS's as it is set.
    """
    n = args.threads
    if n == "auto":
        n = 1 if dataset == "digits" else None
    if n is None and ranks > 1:
        n = max(1, F.get_num_threads() // ranks)
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = F.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        F.set_num_threads(previous)


def _make_optimizer(args, params):
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, nesterov=args.nesterov)
    cls = optim.Adam if args.optimizer == "adam" else optim.AdamW
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


# The ResNet paper's CIFAR schedule (He et al. 2015, Section 4.2), in iterations at batch 128.
PAPER_MILESTONES, PAPER_ITERATIONS = (32_000, 48_000), 64_000
# What --schedule paper and short set unless given: the paper's batch, lr, momentum and decay.
_PAPER_DEFAULTS = {"batch_size": 128, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
_DEFAULTS = {"batch_size": 64, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def _resolve_recipe_defaults(args):
    """Fill the optimisation options left unset from the --schedule's recipe."""
    paper = args.schedule in ("paper", "short")
    for name, value in (_PAPER_DEFAULTS if paper else _DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.schedule == "paper" and args.epochs is not None:
        raise UsageError("--schedule paper runs 64,000 iterations (He et al. 2015); leave out "
                         "--epochs, or use --schedule short --epochs N for a shorter run")
    if args.epochs is None:
        args.epochs = 3 if args.schedule == "short" else 20


def _make_scheduler(args, optimizer, steps_per_epoch):
    """The --schedule, counted in iterations (the trainer steps it after every batch)."""
    total = args.epochs * steps_per_epoch
    warmup = min(int(round(args.warmup * steps_per_epoch)), max(total - 1, 0))
    rest = max(total - warmup, 1)
    if args.schedule == "paper":
        main = optim.MultiStepLR(optimizer, milestones=[m - warmup for m in PAPER_MILESTONES],
                                 gamma=0.1)
    elif args.schedule == "cosine":
        main = optim.CosineAnnealingLR(optimizer, T_max=rest)
    elif args.schedule == "step":
        # /10 every third of the run (after warm-up).
        main = optim.StepLR(optimizer, step_size=max(rest // 3, 1), gamma=0.1)
    elif args.schedule in ("multistep", "short"):
        # The ResNet paper's CIFAR schedule: /10 at 50% and 75% of training (32k, 48k of 64k).
        main = optim.MultiStepLR(optimizer, milestones=[rest // 2, rest * 3 // 4], gamma=0.1)
    else:
        main = None
    if warmup == 0:
        return main
    ramp = optim.LinearLR(optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup)
    if main is None:
        return ramp
    return optim.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def _loader(dataset, args, shuffle, drop_last, seed, comm=None):
    from .data import DataLoader

    device = "cuda" if args.device == "cuda" else None
    shards = {} if comm is None else {"num_replicas": comm.Get_size(), "rank": comm.Get_rank()}
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, drop_last=drop_last,
                      seed=seed, num_workers=args.workers, device=device, **shards)


def _communicator(args):
    """MPI's world for --distributed (None without it), after checking the options fit it."""
    if not args.distributed:
        if args.sync_bn:
            raise UsageError("--sync-bn synchronizes batch norm across processes; it needs "
                             "--distributed (under mpiexec -n P)")
        return None
    from . import distributed

    comm = distributed.world()  # RuntimeError with the install command when mpi4py is missing
    distributed.abort_on_error(comm)
    args.comm = comm  # main() ends every rank when this one fails
    size = comm.Get_size()
    if args.device == "cuda":
        raise UsageError("--distributed runs on the CPU: the MPI of the mpich wheel cannot read "
                         "GPU memory")
    if args.batch_size % size:
        raise UsageError(
            f"--batch-size {args.batch_size} (the global batch) is not divisible by the {size} "
            f"processes; use a multiple of {size}"
        )
    if comm.Get_rank() != 0:
        logging.getLogger("tinyresnet").setLevel(logging.ERROR)  # rank 0 alone logs
    return comm


def _smoke_subset(dataset, n, seed):
    from .train.recipes import Subset

    n = min(n, len(dataset))
    order = np.random.default_rng(seed).permutation(len(dataset))[:n]
    return Subset(dataset, np.sort(order))


# ---- train -------------------------------------------------------------------------------------
def cmd_train(args):
    from .train import fit
    from .train.recipes import build_datasets

    _resolve_recipe_defaults(args)
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    comm = _communicator(args)
    is_root = comm is None or comm.Get_rank() == 0
    if args.device == "cuda":
        to_device(np.zeros(1), "cuda")  # fail now with the backend's install hint
    bundle = build_datasets(args.dataset, args.data, args.image_size, val_fraction=args.val_fraction,
                            seed=args.seed, recipe=args.recipe, cache_dir=args.cache_dir,
                            progress=is_root and not args.no_progress)
    train_set, test_set = bundle.train, bundle.test
    if args.smoke:
        train_set = _smoke_subset(train_set, 2 * args.batch_size, args.seed)
        test_set = _smoke_subset(test_set, args.batch_size, args.seed)
    if args.batch_size > len(train_set):
        raise UsageError(
            f"--batch-size {args.batch_size} is larger than the training set ({len(train_set)} "
            f"images); batches drop the incomplete last one, so there would be none. Use a "
            f"batch size of at most {len(train_set)}"
        )
    spec = bundle.spec
    name = args.model
    kwargs = _model_kwargs(len(spec["classes"]), spec["in_channels"])
    manual_seed(args.seed)
    model = _build_model(name, kwargs)
    if args.sync_bn:
        model = nn.convert_sync_batchnorm(model, comm)
    # The training loader drops the last, incomplete batch: a batch of a few images would give
    # batch norm noisy statistics. The seed fixes the shuffle order and the augmentation.
    train_loader = _loader(train_set, args, shuffle=True, drop_last=True, seed=args.seed, comm=comm)
    test_loader = _loader(test_set, args, shuffle=False, drop_last=False, seed=args.seed,
                          comm=comm)
    optimizer = _make_optimizer(args, model.parameters())
    max_steps = None
    if args.schedule == "paper":
        max_steps = PAPER_ITERATIONS
        args.epochs = -(-PAPER_ITERATIONS // len(train_loader))
    scheduler = _make_scheduler(args, optimizer, len(train_loader))
    out = args.out or os.path.join("runs", f"{args.dataset}-{name}")
    last = os.path.join(out, "last.npz")
    if args.resume and not os.path.isfile(last):
        raise UsageError(f"nothing to resume: '{last}' does not exist (train without --resume first)")
    logging.getLogger(__name__).info(
        "training %s (%s parameters) on %s (%s recipe): %d training, %d test images, %d epochs "
        "-> %s", name, f"{sum(p.size for p in model.parameters()):,}", args.dataset,
        spec["recipe"], len(train_set), len(test_set), args.epochs, out)
    ranks = 1
    if comm is not None:
        from .distributed import ranks_on_this_machine

        ranks = ranks_on_this_machine(comm)
    started = time.perf_counter()
    with _cpu_threads(args, args.dataset, ranks):
        if comm is not None:
            logging.getLogger(__name__).info(
                "data parallel on %d processes (%d on this machine, %d threads each): %d images "
                "per process of the global batch of %d, batch norm %s", comm.Get_size(), ranks,
                F.get_num_threads(), args.batch_size // comm.Get_size(), args.batch_size,
                "synchronized" if args.sync_bn else "per process")
        result = fit(model, train_loader, test_loader, optimizer, scheduler, epochs=args.epochs,
                     out_dir=out, resume=args.resume, device=args.device,
                     progress=not args.no_progress, scheduler_interval="step", model_name=name,
                     model_kwargs=kwargs, extra={"data": spec}, max_steps=max_steps, comm=comm)
    elapsed = time.perf_counter() - started
    if not is_root:
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(f"Interrupted; to continue from {last}, run the same command with --resume.",
              file=sys.stderr)
        return 130
    final = result.history[-1]
    print(f"test accuracy after {len(result.history)} epochs: top-1 {final['val_acc1']:.2f}%, "
          f"top-5 {final['val_acc5']:.2f}%, loss {final['val_loss']:.4f} "
          f"(best top-1 {result.best_acc1:.2f}% at epoch {result.best_epoch + 1}); "
          f"{elapsed:.0f} s")
    print(f"checkpoints: {last}, {os.path.join(out, 'best.npz')}; history and curves.png in {out}")
    return 0


# ---- eval --------------------------------------------------------------------------------------
def _load_model(path, device="cpu"):
    """Rebuild the model a checkpoint was trained as, with its weights; (model, checkpoint)."""
    from .train import load_checkpoint, read_checkpoint

    ckpt = read_checkpoint(path)
    if not ckpt.model_name:
        raise UsageError(
            f"checkpoint '{path}' does not say which model it holds (saved without model_name)"
        )
    model = _build_model(ckpt.model_name, ckpt.model_kwargs)
    load_checkpoint(path, model, model_name=ckpt.model_name, model_kwargs=ckpt.model_kwargs)
    model.to(device)
    model.eval()
    return model, ckpt


def cmd_eval(args):
    from .train import evaluate
    from .train.recipes import build_datasets, eval_dataset

    model, ckpt = _load_model(args.checkpoint, args.device)
    spec = ckpt.extra.get("data")
    if args.dataset is not None and args.dataset != (spec or {}).get("dataset"):
        bundle = build_datasets(args.dataset, args.data, args.image_size, augment=False,
                                recipe=args.recipe, cache_dir=args.cache_dir,
                                progress=not args.no_progress)
        dataset, spec = (bundle.train if args.split == "train" else bundle.test), bundle.spec
    elif spec:
        dataset, spec = eval_dataset(spec, args.data, args.split, cache_dir=args.cache_dir,
                                     progress=not args.no_progress)
    else:
        raise UsageError(f"checkpoint '{args.checkpoint}' records no dataset; pass --dataset")
    num_classes = ckpt.model_kwargs.get("num_classes")
    if num_classes is not None and len(spec["classes"]) > num_classes:
        raise UsageError(
            f"labels out of range: the {spec['dataset']} data has {len(spec['classes'])} classes "
            f"but the model in '{args.checkpoint}' predicts {num_classes}"
        )
    loader = _loader(dataset, args, shuffle=False, drop_last=False, seed=0)
    started = time.perf_counter()
    with _cpu_threads(args, spec["dataset"]):
        result = evaluate(model, loader, device=args.device, progress=not args.no_progress)
    print(f"{spec['dataset']} {args.split} ({result['count']} images): top-1 {result['acc1']:.2f}%, "
          f"top-5 {result['acc5']:.2f}%, loss {result['loss']:.4f}  "
          f"[{ckpt.architecture}, epoch {ckpt.epoch}; {time.perf_counter() - started:.1f} s]")
    return 0


# ---- predict -----------------------------------------------------------------------------------
def cmd_predict(args):
    from .functional.loss import log_softmax
    from .nn import no_grad
    from .train.recipes import load_image_for

    model, ckpt = _load_model(args.checkpoint, args.device)
    spec = ckpt.extra.get("data")
    if not spec:
        raise UsageError(f"checkpoint '{args.checkpoint}' records no preprocessing (no 'data' spec)")
    classes = spec["classes"]
    for path in args.images:
        if not os.path.isfile(path):
            raise UsageError(f"image '{path}' does not exist")
    x = np.stack([load_image_for(path, spec) for path in args.images])
    with no_grad():
        logits = model(to_device(x.astype(default_dtype()), args.device))
    probabilities = np.exp(log_softmax(np.asarray(to_device(logits, "cpu"), dtype=np.float64)))
    k = min(args.topk, probabilities.shape[1])
    for path, p in zip(args.images, probabilities):
        print(path)
        for rank, c in enumerate(np.argsort(-p, kind="stable")[:k], start=1):
            name = classes[c] if c < len(classes) else str(c)
            print(f"  {rank}. {name:<20s} {100 * p[c]:6.2f}%")
    return 0


# ---- data prepare ------------------------------------------------------------------------------
def cmd_data_prepare(args):
    from .data.cache import load_folder

    root = os.path.expanduser(args.folder)
    if not os.path.isdir(root):
        raise UsageError(f"'{args.folder}' is not a folder")
    split = [os.path.join(root, name) for name in ("train", "val", "test")
             if os.path.isdir(os.path.join(root, name))]
    for folder in (split if len(split) > 1 else [root]):
        images, _, _, built = load_folder(folder, args.cache_dir, progress=not args.no_progress)
        print(f"{folder}: {len(images):,} images of {images.shape[2]}x{images.shape[1]} "
              f"{'decoded into' if built else 'already in'} the cache "
              f"({images.nbytes / 2**20:.0f} MiB)")
    return 0


def cmd_data_pack(args):
    from .data.packed import pack_folder

    root = os.path.expanduser(args.folder)
    if not os.path.isdir(root):
        raise UsageError(f"'{args.folder}' is not a folder")
    count = pack_folder(root, args.out)
    print(f"{args.out}: {count:,} image files ({os.path.getsize(args.out) / 2**20:.1f} MiB)")
    return 0


def cmd_data_extract(args):
    from .data.packed import extract

    if not os.path.isfile(args.packed):
        raise UsageError(f"'{args.packed}' is not a file")
    print(f"{args.out}: {extract(args.packed, args.out):,} image files written")
    return 0


# ---- summary and gradcheck --------------------------------------------------------------------
def cmd_summary(args):
    size = args.image_size or _default_input_size(args.model)
    model = _build_model(args.model, _model_kwargs(args.num_classes, args.in_channels))
    print(models.summary(model, (args.in_channels, size, size)))
    return 0


def cmd_gradcheck(args):
    from .gradcheck import GradCheckReport, check_direction

    # Inputs large enough that the last batch norm averages >= 8 values per channel (a BN over
    # two values is all kinks); see tests/models/test_gradcheck_networks.py.
    size = args.image_size or (16 if "cifar" in args.model else 64)
    previous = default_dtype()
    manual_seed(args.seed)
    set_default_dtype(np.float64)
    try:
        model = _build_model(args.model, _model_kwargs(args.num_classes,
                                                       args.in_channels)).double()
    finally:
        set_default_dtype(previous)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch_size, args.in_channels, size, size))
    started = time.perf_counter()
    error = check_direction(model, x, h=args.step, seed=args.seed)
    report = GradCheckReport(errors=[error], tol=args.tol)
    n_params = sum(p.size for p in model.parameters())
    print(f"{args.model}: float64, input {x.shape}, {n_params:,} parameters, training mode; "
          f"L = sum(model(x) * dy) for a random dy, differentiated along one random direction "
          f"over the input and every parameter, relative step {error.step:g} "
          f"({time.perf_counter() - started:.1f} s)")
    print(report)
    return 0 if report.ok else 1


# ---- the parser --------------------------------------------------------------------------------
def _add_device(p):
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to compute: cpu (NumPy) or cuda (CuPy on an NVIDIA GPU). "
                        "Default: cpu")


def _add_threads(p):
    p.add_argument("--threads", type=_threads, default="auto", metavar="N",
                   help="CPU threads for the layers (their products and copies). Default: auto "
                        "(1 for the digits, whose small arrays do not gain from threads; all "
                        "cores otherwise)")


def _add_progress(p):
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_recipe(p):
    p.add_argument("--recipe", choices=("auto", "cifar", "imagenet"), default="auto",
                   help="preprocessing and augmentation: cifar (4-pixel padded random crop and "
                        "flip, no resizing), imagenet (random resized crop; resize and centre "
                        "crop to evaluate). auto: cifar for the CIFAR archives and folders of "
                        "images of at most 64 pixels a side, imagenet otherwise. Default: auto")


def _add_cache_dir(p):
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where folders of small images are decoded once into an array. "
                        "Default: $TINYRESNET_CACHE or ~/.cache/tinyresnet")


def build_parser():
    """The argparse parser of the ``tinyresnet`` command (exposed for documentation and tests)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="tinyresnet", formatter_class=fmt, epilog=_EPILOG,
        description="tinyresnet: a pure-NumPy ResNet with hand-written backward passes.\n"
                    "Train, evaluate and inspect ResNets from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"tinyresnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "train", formatter_class=fmt, epilog=_EPILOG,
        help="train a ResNet (default: CIFAR ResNet-20 on the built-in digits)",
        description=(
            "Train a ResNet and save checkpoints, a history and a plot of the curves.\n\n"
            "With no options it trains a CIFAR-style ResNet-20 on the handwritten digits that\n"
            "ship with tinyresnet (1,347 training and 450 test images of 8x8 pixels), which\n"
            "needs no download and takes a few minutes on a laptop CPU.\n\n"
            "Written to OUT (default runs/<dataset>-<model>/):\n"
            "  last.npz       checkpoint after the latest epoch (or at Ctrl-C)\n"
            "  best.npz       checkpoint with the best test accuracy so far\n"
            "  history.jsonl  one line per epoch (also history.csv)\n"
            "  curves.png     loss and accuracy per epoch\n\n"
            "Ctrl-C stops after the current batch and saves last.npz; run the same command\n"
            "with --resume to continue exactly where it stopped.\n\n"
            "examples:\n"
            "  tinyresnet train\n"
            "  mpiexec -n 2 tinyresnet train --distributed --sync-bn\n"
            "  tinyresnet train --dataset cifar10 --data ~/data --epochs 160 --schedule multistep\n"
            "  tinyresnet train --dataset imagefolder --data cifar10/train --schedule short "
            "--epochs 3\n"
            "  tinyresnet train --dataset imagefolder --data photos/ --model resnet18 "
            "--image-size 128"),
    )
    g = p.add_argument_group("model and data")
    g.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME",
                   help=f"network to train, e.g. cifar_resnet20, cifar_resnet56, "
                        f"plain_cifar_resnet20, resnet18, resnet50 (see 'tinyresnet summary "
                        f"--help'). Default: {DEFAULT_MODEL}")
    g.add_argument("--dataset", choices=("digits", "cifar10", "cifar100", "imagefolder"),
                   default="digits",
                   help="digits: built in, no download. cifar10/cifar100: the official "
                        "archives, in the folder given by --data. imagefolder: a folder with one "
                        "sub-folder of images per class (optionally split into train/ and val/). "
                        "Default: digits")
    g.add_argument("--data", metavar="PATH",
                   help="folder of the CIFAR files or of the image folder (not needed for digits)")
    g.add_argument("--image-size", type=int, metavar="N",
                   help="imagefolder, ImageNet recipe: side of the square crops fed to the "
                        "network (default 224); the CIFAR recipe keeps the images' own size")
    _add_recipe(g)
    g.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                   help="imagefolder without train/ and val/: share of the images held out for "
                        "testing. Default: 0.1")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int,
                   help="passes over the training set. Default: 20 (short: 3; paper: as many as "
                        "64,000 iterations take)")
    g.add_argument("--batch-size", type=int,
                   help="images per step. Default: 64 (paper and short: 128)")
    g.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd",
                   help="Default: sgd")
    g.add_argument("--lr", type=float, help="peak learning rate (about 1e-3 suits adam/adamw). Default: 0.1")
    g.add_argument("--momentum", type=float, help="SGD momentum. Default: 0.9")
    g.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    g.add_argument("--weight-decay", type=float,
                   help="L2 penalty on every parameter. Default: 5e-4 (paper and short: 1e-4)")
    g.add_argument("--schedule", choices=("cosine", "step", "multistep", "paper", "short", "none"),
                   default="cosine",
                   help="learning-rate schedule over the run, updated every step: cosine decay "
                        "to 0; step: /10 every third; multistep: /10 at 50%% and 75%%; paper: the "
                        "ResNet paper's CIFAR recipe, batch 128, SGD momentum 0.9, weight decay "
                        "1e-4, lr 0.1 /10 at 32k and 48k iterations, stop at 64k; short: the same "
                        "recipe with the /10 steps at 50%% and 75%% of --epochs (default 3); "
                        "none: constant. Default: cosine")
    g.add_argument("--warmup", type=float, default=0.0, metavar="EPOCHS",
                   help="ramp the learning rate linearly from lr/10 over this many epochs "
                        "first. Default: 0")
    g = p.add_argument_group("run")
    _add_device(g)
    g.add_argument("--seed", type=int, default=0,
                   help="seeds the weights, the shuffle order and the augmentation; the same "
                        "seed gives the same run. Default: 0")
    g.add_argument("--out", metavar="DIR", help="output folder. Default: runs/<dataset>-<model>")
    g.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.npz (same options as the interrupted run)")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="threads decoding images in parallel (image folders). Default: 0")
    _add_cache_dir(g)
    g.add_argument("--distributed", action="store_true",
                   help="data parallel over the processes of 'mpiexec -n P' (needs the mpi "
                        "extra): --batch-size is the global batch, B/P images per process; "
                        "rank 0 alone logs and writes")
    g.add_argument("--sync-bn", action="store_true",
                   help="with --distributed: batch norm uses the statistics of the global "
                        "batch (SyncBatchNorm) instead of each process's share")
    g.add_argument("--smoke", action="store_true",
                   help="a quick check of the whole pipeline: two batches of training and one "
                        "of test images, for --epochs epochs")
    _add_threads(g)
    _add_progress(g)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval", formatter_class=fmt, epilog=_EPILOG,
        help="measure a checkpoint's top-1/top-5 accuracy",
        description=(
            "Evaluate a checkpoint: top-1 and top-5 accuracy and the mean loss.\n\n"
            "By default on the test split of the dataset it was trained on, preprocessed as in\n"
            "training; --dataset/--data point it elsewhere.\n\n"
            "example:\n  tinyresnet eval runs/digits-cifar_resnet20/best.npz"),
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz written by 'tinyresnet train'")
    p.add_argument("--dataset", choices=("digits", "cifar10", "cifar100", "imagefolder"),
                   help="evaluate on this dataset instead of the training one")
    p.add_argument("--data", metavar="PATH", help="folder of the dataset (overrides the recorded one)")
    p.add_argument("--image-size", type=int, metavar="N", help="imagefolder only: crop size")
    _add_recipe(p)
    _add_cache_dir(p)
    p.add_argument("--split", choices=("test", "train"), default="test", help="Default: test")
    p.add_argument("--batch-size", type=int, default=128, help="Default: 128")
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    _add_device(p)
    _add_threads(p)
    _add_progress(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "predict", formatter_class=fmt, epilog=_EPILOG,
        help="classify image files with a checkpoint (top-5 with class names)",
        description=(
            "Classify image files: prints the top classes of each with their probabilities.\n\n"
            "Images are preprocessed as the checkpoint's training data was (for the digits:\n"
            "grayscale, light-on-dark, reduced to 8x8).\n\n"
            "example:\n  tinyresnet predict --checkpoint runs/digits-cifar_resnet20/best.npz "
            "seven.png"),
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (png, jpg, ...)")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a .npz written by 'tinyresnet train'")
    p.add_argument("--topk", type=int, default=5, metavar="K", help="classes to list. Default: 5")
    _add_device(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "data", formatter_class=fmt, epilog=_EPILOG,
        help="prepare datasets: decode an image folder once into the cache (prepare), or carry "
             "it as one file (pack, extract)",
        description=(
            "Decode an image folder (one sub-folder of images per class, or train/ and val/ or\n"
            "test/ holding such folders) into one uint8 array per folder in the cache, so that\n"
            "training reads no image file.  The cache is reused while the folder's file names,\n"
            "sizes and modification times are unchanged and rebuilt otherwise.\n\n"
            "'pack' stores a folder's image files, bytes unchanged, in one .npz (50,000 small\n"
            "files copy slowly; one file does not), and 'extract' writes them back.\n\n"
            "examples:\n  tinyresnet data prepare ~/data/cifar10/train\n"
            "  tinyresnet data pack ~/data/cifar10/train cifar10-train.npz\n"
            "  tinyresnet data extract cifar10-train.npz /tmp/cifar10/train"),
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    q = data_sub.add_parser("prepare", help="decode an image folder into the cache")
    q.add_argument("folder", metavar="FOLDER", help="the image folder")
    _add_cache_dir(q)
    _add_progress(q)
    q.set_defaults(func=cmd_data_prepare)
    q = data_sub.add_parser("pack", help="store an image folder's files in one .npz, to copy it")
    q.add_argument("folder", metavar="FOLDER", help="the image folder")
    q.add_argument("out", metavar="OUT", help="the .npz to write")
    q.set_defaults(func=cmd_data_pack)
    q = data_sub.add_parser("extract", help="write a packed folder's files back, byte for byte")
    q.add_argument("packed", metavar="PACKED", help="a .npz written by 'data pack'")
    q.add_argument("out", metavar="OUT", help="the folder to write the image folder into")
    q.set_defaults(func=cmd_data_extract)

    p = sub.add_parser(
        "summary", formatter_class=fmt, epilog=_EPILOG,
        help="print a model's layers, output shapes, parameters and multiply-adds",
        description=(
            "Print a model layer by layer: output shape, parameters and multiply-adds.\n\n"
            f"models: {', '.join(models.list_models())}\n\n"
            "examples:\n  tinyresnet summary resnet50\n"
            "  tinyresnet summary cifar_resnet20 --in-channels 1 --image-size 8"),
    )
    p.add_argument("model", metavar="MODEL", help="model name, e.g. resnet18 or cifar_resnet20")
    p.add_argument("--num-classes", type=int, default=10, help="Default: 10")
    p.add_argument("--in-channels", type=int, default=3, help="Default: 3")
    p.add_argument("--image-size", type=int, metavar="N",
                   help="input side. Default: 32 for CIFAR models, 224 otherwise")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "gradcheck", formatter_class=fmt, epilog=_EPILOG,
        help="check a whole model's hand-written backward pass numerically",
        description=(
            "Check a whole network's backward pass against finite differences.\n\n"
            "Builds a float64 copy of MODEL in training mode, and for L = sum(model(x) * dy) with\n"
            "a random batch x and a random dy compares the derivative along one random\n"
            "direction v (over the input and every parameter at once, each tensor's part\n"
            "scaled to that tensor's RMS) from backward() with the central difference\n"
            "(L(w + h v) - L(w - h v)) / 2h.\n"
            "Exit status 0 when the relative error is below --tol, 1 otherwise.\n\n"
            "example:\n  tinyresnet gradcheck cifar_resnet20"),
    )
    p.add_argument("model", metavar="MODEL", help="model name, e.g. cifar_resnet20 or resnet18")
    p.add_argument("--batch-size", type=int, default=2, help="Default: 2")
    p.add_argument("--image-size", type=int, metavar="N",
                   help="input side. Default: 16 for CIFAR models, 64 otherwise")
    p.add_argument("--in-channels", type=int, default=3, help="Default: 3")
    p.add_argument("--num-classes", type=int, default=10, help="Default: 10")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="largest accepted relative error. Default: 1e-6")
    p.add_argument("--step", type=float, metavar="H",
                   help="finite-difference step h, relative: each tensor moves by h times its "
                        "own RMS. Default: of 1e-5 ... 4e-8, the step whose difference quotient "
                        "agrees best with the next smaller step's, within measured round-off")
    p.add_argument("--seed", type=int, default=0, help="Default: 0")
    p.set_defaults(func=cmd_gradcheck)

    # Course assignments: listed here for --help; main() hands their arguments to tinyresnet.assign.
    for name, what in _ASSIGN_COMMANDS.items():
        sub.add_parser(name, help=what, add_help=False).add_argument("rest", nargs="*")
    return parser


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


_ASSIGN_COMMANDS = {
    "assign": "course assignments: assign build A1 writes the student release (tinyresnet.assign)",
    "check": "check your assignment work, part by part: check A1",
    "grade": "grade a folder of assignment submissions: grade A1 SUBMISSIONS/",
}


def _fail(args, message, status):
    """Print the one-line error; under --distributed, end every rank (none waits forever)."""
    comm = getattr(args, "comm", None)
    if comm is not None and comm.Get_size() > 1:
        from .distributed import abort

        abort(comm, message, status)
    print(message, file=sys.stderr)
    return status


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 error, 130 Ctrl-C)."""
    from .train import CheckpointError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in _ASSIGN_COMMANDS:
        from .assign.cli import main as assign_main

        if argv[0] == "assign":
            return assign_main(argv[1:], prog="tinyresnet assign")
        return assign_main(argv, prog="tinyresnet")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("tinyresnet")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail(args, f"tinyresnet {args.command}: interrupted", 130)
    except (UsageError, CheckpointError, OSError, ValueError, TypeError, RuntimeError,
            FloatingPointError) as e:
        if os.environ.get("TINYRESNET_DEBUG"):
            raise
        return _fail(args, f"tinyresnet {args.command}: error: {_one_line(e)}", 2)
    finally:
        package_logger.removeHandler(handler)
