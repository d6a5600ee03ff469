"""Layers as modules: each keeps its forward cache and writes gradients into Parameter.grad."""
from . import init
from .activation import ReLU
from .container import Sequential
from .conv import Conv2d, skip_input_grad
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss
from .module import Module, is_grad_enabled, no_grad, set_check_finite
from .norm import BatchNorm2d
from .parameter import Parameter
from .pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .sync_norm import SyncBatchNorm, convert_sync_batchnorm

__all__ = [
    "Parameter", "Module", "no_grad", "is_grad_enabled", "set_check_finite", "init",
    "Conv2d", "skip_input_grad", "BatchNorm2d", "SyncBatchNorm", "convert_sync_batchnorm", "ReLU",
    "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d",
    "Linear", "Flatten", "Identity", "Dropout", "Sequential", "CrossEntropyLoss",
]
