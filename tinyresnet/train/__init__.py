"""Training: the fit/evaluate loop, top-k metrics, atomic checkpoints, and history with curves."""
from .checkpoint import (
    Checkpoint, CheckpointError, architecture_fingerprint, load_checkpoint, read_checkpoint,
    save_checkpoint,
)
from .history import History, plot_history
from .metrics import AverageMeter, accuracy, topk_correct
from .trainer import FitResult, evaluate, fit

__all__ = [
    "fit", "evaluate", "FitResult",
    "accuracy", "topk_correct", "AverageMeter",
    "save_checkpoint", "load_checkpoint", "read_checkpoint", "Checkpoint", "CheckpointError",
    "architecture_fingerprint",
    "History", "plot_history",
]
