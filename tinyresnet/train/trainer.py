"""fit and evaluate: the training loop, with progress bar, history, checkpoints, resume and Ctrl-C.

One epoch of ``fit``::

    loader.set_epoch(epoch)                     # the shuffle order depends on (seed, epoch) only
    for x, y in loader:                         # tqdm bar: loss, top-1 accuracy, images/s
        logits = model(x); loss = loss_fn(logits, y)
        model.zero_grad(); model.backward(loss_fn.backward()); optimizer.step()
        scheduler.step()                        # only with scheduler_interval="step"
    evaluate(model, val_loader)                 # top-1, top-5, mean loss
    scheduler.step()                            # only with scheduler_interval="epoch" (default)
    history.append(...); save last.npz (and best.npz when val top-1 improved)

Reading the loss: ``loss_fn`` may return the loss as a 0-d device array (on the GPU, reading it
makes the host wait for the device).  The trainer keeps each step's loss and top-1 count as they
come and reads them as Python numbers once per logging interval (``log_every`` steps, and at the
end of an epoch or an interruption), so the device runs ahead in between; the averages, the
progress bar and the history hold the same numbers as if each step had been read at once.  A
non-finite loss is reported when its interval is read, naming the batch where it appeared.

Scheduler stepping: with ``scheduler_interval="epoch"`` (the default, as in PyTorch's examples)
``scheduler.step()`` runs once at the end of every epoch, so schedule lengths are in epochs; with
``"step"`` it runs after every optimizer step, so they are in iterations (smoother warm-up and
cosine curves on short runs).  A ``ReduceLROnPlateau`` is stepped once per epoch with the metric it
watches: the validation loss (``mode="min"``) or top-1 accuracy (``mode="max"``), the training
ones without a validation loader.

Resume: ``last.npz`` holds the model, optimizer, scheduler, the package RNG state, the number of
finished epochs and of batches finished in the current epoch.  ``fit(..., resume=True)`` loads it
and continues at that batch: the loader is put back on the same epoch (``set_epoch``) and the
batches already done are skipped, so on the CPU the result is bit for bit that of a run never
stopped (provided, as tinyresnet's DataLoader guarantees, the loader's order and augmentation
depend only on its seed and the epoch).

Ctrl-C: the first press asks the loop to stop at the end of the current batch (a batch half
applied could not be resumed exactly); the trainer then saves ``last.npz`` and returns with
``interrupted=True``.  A second press stops at once, without saving (the batch in flight may be
half applied), leaving the checkpoint of the last finished epoch.  A KeyboardInterrupt raised in a
callback is handled as a first press.

Data parallel (``comm``, an MPI communicator; see ``tinyresnet.distributed``): each rank runs
``fit`` on its own shard of every batch (loaders built with ``num_replicas``/``rank``).  Rank 0's
parameters and buffers are broadcast first; after every backward one Allreduce averages the
gradients and sums the batch's loss, correct count and Ctrl-C flag, so every rank logs the global
batch's figures and all stop at the same batch.  Before each evaluation rank 0's buffers (the
running statistics, per-rank unless batch norm is synchronized) are broadcast, and evaluation sums
its counts over the ranks.  Only rank 0 shows progress, writes the history and the checkpoints;
every rank reads ``last.npz`` on resume (a folder all ranks see), with any number of ranks.
"""
import contextlib
import itertools
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from ..nn import CrossEntropyLoss, no_grad, skip_input_grad
from ..optim import ReduceLROnPlateau
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .metrics import AverageMeter, topk_correct

__all__ = ["fit", "evaluate", "FitResult"]

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What ``fit`` returns: the history records, the best validation accuracy, where the
    checkpoints are, and whether the run was interrupted."""

    history: list = field(default_factory=list)
    best_acc1: float = None
    best_epoch: int = None
    epochs_done: int = 0
    interrupted: bool = False
    last_checkpoint: str = None
    best_checkpoint: str = None


class _StopRequest:
    """Turns the first SIGINT into a flag the loop checks between batches; the second raises.

    Only the main thread can install signal handlers; elsewhere Ctrl-C stays a plain
    KeyboardInterrupt (and the saved state may then include part of the interrupted batch).
    """

    def __init__(self):
        self.requested = self.forced = False
        # Data parallel: the flag every rank agreed on at the last gradient Allreduce (None: not
        # distributed), so that all ranks stop at the same batch.
        self.agreed = None
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False

    def check(self):
        if self.requested if self.agreed is None else self.agreed:
            raise KeyboardInterrupt


def _progress(total, initial, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, unit="batch",
                dynamic_ncols=True, leave=True)


def _where(epoch, step):
    """'after epoch 3' or 'at epoch 4, batch 17' (epochs counted from 1, batches from 0)."""
    if step:
        return f"at epoch {epoch + 1}, batch {step}"
    return f"after epoch {epoch}" if epoch else "at the start"


def _current_lr(optimizer):
    if hasattr(optimizer, "lr"):
        return float(optimizer.lr)
    return float(optimizer.param_groups[0]["lr"])


def _to(device, *arrays):
    return tuple(to_device(a, device) for a in arrays)


def evaluate(model, loader, loss_fn=None, device="cpu", topk=(1, 5), progress=False,
             stop=None, comm=None):
    """Mean loss and top-k accuracies of ``model`` over every batch of ``loader``.

    The model runs in eval mode (batch norm uses its running statistics) inside ``no_grad``, and
    is put back in the mode it was in.  Returns ``{"loss", "acc1", "acc5", "count"}`` (one
    ``acc<k>`` per k in ``topk``, in percent).  With an MPI ``comm`` each rank evaluates its
    shard and the sums are added over the ranks (every rank gets the totals).
    """
    loss_fn = loss_fn or CrossEntropyLoss()
    was_training = model.training
    model.eval()
    loss_sum, count, correct = 0.0, 0, [0] * len(topk)
    bar = _progress(len(loader), 0, "eval", progress)
    try:
        with no_grad():
            for x, y in loader:
                x, y = _to(device, x, y)
                logits = model(x)
                n = int(y.shape[0])
                loss_sum += loss_fn(logits, y) * n
                count += n
                correct = [c + h for c, h in zip(correct, topk_correct(logits, y, topk))]
                bar.update(1)
                if stop is not None:
                    stop.check()
    finally:
        bar.close()
        model.train(was_training)
    loss_sum = float(loss_sum)  # on the GPU, the one wait for the device of the whole pass
    if comm is not None:
        from ..distributed import allreduce_sum

        loss_sum, count, *correct = allreduce_sum(comm, np.array([loss_sum, count, *correct],
                                                                dtype=np.float64)).tolist()
    result = {"loss": loss_sum / max(count, 1), "count": count}
    result.update({f"acc{k}": 100.0 * c / max(count, 1) for k, c in zip(topk, correct)})
    return result


def _batches_from(loader, start):
    """Iterate the loader from batch ``start`` on; also returns the underlying iterator (to close).

    A loader has no public way to start mid-epoch, so the batches before ``start`` are loaded and
    dropped: free for in-memory data, one more decode for an image folder.  With tinyresnet's
    DataLoader the later batches do not depend on this (each sample's randomness is seeded by its
    position in the epoch), and with any loader they come out as in the uninterrupted run."""
    it = iter(loader)
    return itertools.islice(it, start, None), it


def fit(model, train_loader, val_loader, optimizer, scheduler=None, *, epochs, out_dir,
        resume=False, device="cpu", progress=True, scheduler_interval="epoch", loss_fn=None,
        model_name=None, model_kwargs=None, extra=None, on_batch=None, plot=True, max_steps=None,
        log_every=10, comm=None):
    """Train ``model`` for ``epochs`` epochs, evaluating, logging and checkpointing every epoch.

    Parameters
    ----------
    model : Module, producing (N, K) logits
    train_loader, val_loader : iterables of (x, y) batches with ``len``; the train loader's
        ``set_epoch(epoch)`` is called before each epoch when it has one.  ``val_loader`` may be
        None (then no best.npz is kept).
    optimizer : an optimizer with ``step()`` and ``state_dict()``
    scheduler : a learning-rate scheduler with ``step()`` and ``state_dict()``, or None
    epochs : total number of epochs (a resumed run counts the epochs already done)
    out_dir : folder for last.npz, best.npz, history.jsonl, history.csv and curves.png
    resume : continue from ``out_dir/last.npz`` (see the module docstring)
    device : 'cpu' or 'cuda'; the model and each batch are moved there
    progress : show a tqdm bar per epoch
    scheduler_interval : 'epoch' or 'step', when ``scheduler.step()`` is called
    loss_fn : defaults to CrossEntropyLoss()
    model_name, model_kwargs, extra : stored in every checkpoint (``tinyresnet eval`` and
        ``predict`` rebuild the model from them)
    on_batch : optional ``on_batch(epoch, step, logs)`` called after every optimizer step
        (``logs["loss"]`` and ``logs["acc1"]`` as the step left them: 0-d arrays on the GPU)
    plot : redraw curves.png after every epoch
    max_steps : stop after this many optimizer steps in all (a schedule counted in iterations,
        such as the ResNet paper's 64,000), even in the middle of an epoch; None: no limit
    log_every : read the loss and accuracy as Python numbers every this many steps (see the
        module docstring)
    comm : an MPI communicator to train data-parallel over its ranks, or None (see the module
        docstring); the loaders must be sharded with ``num_replicas``/``rank``

    Returns
    -------
    FitResult
    """
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    if isinstance(scheduler, ReduceLROnPlateau) and scheduler_interval != "epoch":
        raise ValueError("fit: ReduceLROnPlateau watches an epoch's metric; use "
                         "scheduler_interval='epoch'")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"fit: max_steps must be >= 1 or None, got {max_steps}")
    n_batches = len(train_loader)
    if n_batches == 0:
        raise ValueError(
            "fit: the training loader yields no batches (a dataset smaller than the batch size "
            "with drop_last=True?)"
        )
    replicas = None
    if comm is not None:
        from ..distributed import Replicas

        replicas = Replicas(model, comm)
        progress = progress and replicas.is_root
        # Every rank must take as many steps, or one would wait forever in the gradient Allreduce.
        # The sums of n and n^2 decide it the same way on every rank: equal iff P sum n^2 = (sum n)^2.
        total, squares = replicas.sum([n_batches, n_batches ** 2])
        if total * total != squares * replicas.size:
            raise ValueError(
                f"fit: the ranks' training loaders have different numbers of batches (this rank "
                f"{n_batches}, {total / replicas.size:g} on average); shard them with drop_last=True"
            )
    is_root = replicas is None or replicas.is_root
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    last_path = os.path.join(out_dir, "last.npz")
    best_path = os.path.join(out_dir, "best.npz")
    loss_fn = loss_fn or CrossEntropyLoss()
    model.to(device)
    # lr: its .val is the learning rate of the latest batch, what the history records.
    meters = {"loss": AverageMeter("loss"), "acc1": AverageMeter("acc1"), "lr": AverageMeter("lr")}
    result = FitResult(last_checkpoint=last_path)
    start_epoch, start_step = 0, 0
    if resume:
        ckpt = load_checkpoint(last_path, model, optimizer, scheduler, train_loader,
                               restore_rng=True, model_name=model_name, model_kwargs=model_kwargs)
        start_epoch, start_step = ckpt.epoch, ckpt.step
        state = ckpt.extra.get("trainer", {})
        result.best_acc1, result.best_epoch = state.get("best_acc1"), state.get("best_epoch")
        for name, meter in meters.items():
            if name in state.get("meters", {}):
                meter.load_state_dict(state["meters"][name])
        model.to(device)
        logger.info("resuming from %s %s", last_path, _where(start_epoch, start_step))
    elif os.path.exists(last_path):
        logger.info("starting afresh in %s (its previous checkpoints will be overwritten)", out_dir)
    if replicas is not None:
        replicas.broadcast_state()
    # Only rank 0 writes files; the other ranks keep their records in memory.
    history = History.load(out_dir, plot=plot, upto_epoch=start_epoch) if is_root else None
    result.history = history.records if is_root else []

    # Where training stands; every checkpoint, including the Ctrl-C one, records exactly this.
    position = {"epoch": start_epoch, "step": start_step}

    def checkpoint(path):
        if not is_root:
            return
        trainer_state = {"best_acc1": result.best_acc1, "best_epoch": result.best_epoch,
                         "meters": {k: m.state_dict() for k, m in meters.items()}}
        save_checkpoint(path, model, optimizer, scheduler, epoch=position["epoch"],
                        step=position["step"], loader=train_loader, model_name=model_name,
                        model_kwargs=model_kwargs, extra={**(extra or {}), "trainer": trainer_state})

    with _StopRequest() as stop:
        if replicas is not None:
            stop.agreed = False
        try:
            for epoch in range(start_epoch, epochs):
                if hasattr(train_loader, "set_epoch"):
                    train_loader.set_epoch(epoch)
                first = position["step"] if epoch == start_epoch else 0
                end = n_batches if max_steps is None else min(n_batches,
                                                              max_steps - epoch * n_batches)
                if end <= 0:
                    break
                if first == 0:
                    for m in meters.values():
                        m.reset()
                timing = {"time_steps": 0, "time_train_s": 0.0, "time_data_s": 0.0}
                if first < end:
                    timing = _train_epoch(model, train_loader, optimizer, scheduler, loss_fn, meters,
                                 epoch, epochs, first, end, position, device, progress,
                                 scheduler_interval, on_batch, stop, max(int(log_every), 1),
                                 replicas)
                record = {"epoch": epoch, "lr": meters["lr"].val,
                          "train_loss": meters["loss"].avg, "train_acc1": meters["acc1"].avg}
                if val_loader is not None:
                    if replicas is not None:
                        replicas.broadcast_state()  # the same running statistics on every rank
                    val = evaluate(model, val_loader, loss_fn, device, progress=False, stop=stop,
                                   comm=comm)
                    record.update({f"val_{k}": v for k, v in val.items() if k != "count"})
                record.update(timing)
                if isinstance(scheduler, ReduceLROnPlateau):
                    watched = "loss" if scheduler.mode == "min" else "acc1"
                    scheduler.step(record.get(f"val_{watched}", record[f"train_{watched}"]))
                elif scheduler is not None and scheduler_interval == "epoch":
                    scheduler.step()
                if is_root:
                    history.append(record)
                else:
                    result.history.append(record)
                logger.info("epoch %d/%d  %s", epoch + 1, epochs, "  ".join(
                    f"{k} {v:.4g}" for k, v in record.items() if k != "epoch"))
                position.update(epoch=epoch + 1, step=0)
                improved = val_loader is not None and (
                    result.best_acc1 is None or record["val_acc1"] > result.best_acc1)
                if improved:
                    result.best_acc1, result.best_epoch = record["val_acc1"], epoch
                checkpoint(last_path)
                if improved:
                    checkpoint(best_path)
                stop.check()
        except KeyboardInterrupt:
            result.interrupted = True
            if stop.forced:
                logger.warning("stopped at once, without saving; %s holds the last finished "
                               "epoch", last_path)
            else:
                # Stop requests land between batches: `position` describes the state exactly.
                checkpoint(last_path)
                logger.warning("interrupted: checkpoint saved to %s %s; run again with resume to "
                               "continue", last_path, _where(position["epoch"], position["step"]))
    result.epochs_done = position["epoch"]
    if os.path.exists(best_path) and result.best_epoch is not None:
        result.best_checkpoint = best_path
    return result


class _Pending:
    """Each step's loss and top-1 count as the step left them (device arrays on the GPU), read
    into the meters together, once per logging interval."""

    def __init__(self, meters, epoch):
        self.meters, self.epoch, self.steps = meters, epoch, []

    def add(self, step, loss, hits, n):
        self.steps.append((step, loss, hits, n))

    def read(self):
        if not self.steps:
            return
        xp = get_array_module(self.steps[0][2])
        # One transfer for the whole interval instead of one wait per step.
        values = to_numpy(xp.stack([xp.asarray(v, dtype=xp.float64) for _, loss, hits, _ in
                                    self.steps for v in (loss, hits)])).reshape(-1, 2)
        for (step, _, _, n), (loss, hits) in zip(self.steps, values):
            if not math.isfinite(loss):
                self.steps = []
                raise FloatingPointError(
                    f"fit: the loss became {loss} at epoch {self.epoch + 1}, batch {step}; "
                    f"try a lower learning rate"
                )
            self.meters["loss"].update(float(loss), n)
            self.meters["acc1"].update(100.0 * int(hits) / n, n)
        self.steps = []


def _train_epoch(model, loader, optimizer, scheduler, loss_fn, meters, epoch, epochs, first,
                 end, position, device, progress, scheduler_interval, on_batch, stop, log_every,
                 replicas=None):
    """Train on batches ``first`` .. ``end - 1`` of one epoch, updating ``meters`` and
    ``position``.  Returns ``{"time_steps", "time_train_s", "time_data_s"}``: the steps run, the
    wall time of the loop, and the part of it spent waiting for the loader's next batch (what the
    training step did not hide).  A resumed epoch times only the steps it ran."""
    model.train()
    skipped = skip_input_grad(model)  # dL/d(images) is never needed (nor computed by PyTorch)
    bar = _progress(end, first, f"epoch {epoch + 1}/{epochs}", progress)
    batches, it = _batches_from(loader, first)
    pending = _Pending(meters, epoch)
    images, started, waited = 0, time.perf_counter(), 0.0
    batches = itertools.islice(batches, end - first)
    try:
        for step in range(first, end):
            asked = time.perf_counter()
            x, y = next(batches)
            waited += time.perf_counter() - asked
            x, y = _to(device, x, y)
            logits = model(x)
            loss = loss_fn(logits, y)
            n = int(y.shape[0])
            # Top-1 hits on the device (argmax takes the first of tied logits, as topk_correct).
            hits = (logits.argmax(axis=1) == y).sum()
            model.zero_grad()
            model.backward(loss_fn.backward())
            if replicas is not None:
                # One Allreduce: the mean gradient, and the global batch's loss, hits and size.
                # (The loss is checked once per logging interval, on every rank alike.)
                loss_sum, hits, n, stop_votes = replicas.average_gradients(
                    [loss * n, hits, n, stop.requested])
                n = int(n)
                loss = loss_sum / n
                stop.agreed = stop_votes > 0
            meters["lr"].update(_current_lr(optimizer))
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            pending.add(step, loss, hits, n)
            position.update(epoch=epoch, step=step + 1)
            images += n
            bar.update(1)
            if (step + 1 - first) % log_every == 0 or step + 1 == end:
                pending.read()
                rate = images / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix({"loss": f"{meters['loss'].avg:.4f}",
                                 "acc": f"{meters['acc1'].avg:.2f}%", "img/s": f"{rate:.0f}"},
                                refresh=False)
            if on_batch is not None:
                on_batch(epoch, step, {"loss": loss, "acc1": 100.0 * hits / n})
            stop.check()
        return {"time_steps": end - first, "time_train_s": time.perf_counter() - started,
                "time_data_s": waited}
    finally:
        if skipped is not None:
            skip_input_grad(model, skipped)
        with contextlib.suppress(FloatingPointError):
            pending.read()  # an interruption keeps the steps it finished in the meters
        bar.close()
        # Stop the loader's background prefetch now rather than when the iterator is collected.
        with contextlib.suppress(Exception):
            getattr(it, "close", lambda: None)()
