"""Stateless forward/backward function pairs: ``y, cache = op_forward(...)``,
``grads = op_backward(dy, cache)``.  One file per family; naive loop references sit beside the
fast conv and max-pool."""
from .activation import relu_backward, relu_forward
from .adaptive_pool import (
    adaptive_avgpool2d_backward,
    adaptive_avgpool2d_forward,
    adaptive_avgpool2d_forward_naive,
    adaptive_maxpool2d_backward,
    adaptive_maxpool2d_forward,
    adaptive_maxpool2d_forward_naive,
    adaptive_pool2d_backward_naive,
    adaptive_window_bounds,
)
from .conv import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    set_im2col_recompute,
)
from .conv_blocked import set_blocked_im2col, set_taller_operand_first
from .cross_entropy import cross_entropy_backward, cross_entropy_forward
from .dropout import dropout_backward, dropout_forward
from .im2col import col2im, conv_output_shape, im2col, set_column_padding
from .linear import flatten_backward, flatten_forward, linear_backward, linear_forward
from .loss import log_softmax, softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .norm import batchnorm2d_backward, batchnorm2d_forward
from .parallel import get_num_threads, set_num_threads
from .pool import (
    avgpool2d_backward,
    avgpool2d_forward,
    global_avgpool2d_backward,
    global_avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_forward_naive,
)
from .residual import add_backward, add_forward
from .sync_norm import sync_batchnorm2d_backward, sync_batchnorm2d_forward

__all__ = [
    "im2col", "col2im", "conv_output_shape", "set_column_padding",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "set_im2col_recompute", "set_taller_operand_first", "set_blocked_im2col",
    "set_num_threads", "get_num_threads",
    "batchnorm2d_forward", "batchnorm2d_backward",
    "sync_batchnorm2d_forward", "sync_batchnorm2d_backward",
    "relu_forward", "relu_backward",
    "maxpool2d_forward", "maxpool2d_backward", "maxpool2d_forward_naive", "maxpool2d_backward_naive",
    "avgpool2d_forward", "avgpool2d_backward",
    "global_avgpool2d_forward", "global_avgpool2d_backward",
    "adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward",
    "adaptive_maxpool2d_forward", "adaptive_maxpool2d_backward",
    "adaptive_avgpool2d_forward_naive", "adaptive_maxpool2d_forward_naive",
    "adaptive_pool2d_backward_naive", "adaptive_window_bounds",
    "linear_forward", "linear_backward", "flatten_forward", "flatten_backward",
    "add_forward", "add_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward", "log_softmax",
    "cross_entropy_forward", "cross_entropy_backward",
    "dropout_forward", "dropout_backward",
]
