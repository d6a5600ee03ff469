"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules, with PyTorch's update rules and names.

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[32000, 48000], gamma=0.1)
    opt.zero_grad(); ...backward...; opt.step(); sched.step()
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from .optimizer import Optimizer, flatten_state_dict, unflatten_state_dict
from .sgd import SGD

__all__ = [
    "Optimizer", "flatten_state_dict", "unflatten_state_dict", "SGD", "Adam", "AdamW",
    "lr_scheduler",
    "LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "LambdaLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau",
]
