"""Gradient flow through skip connections: analyses that return data, and plots of that data.

Each analysis runs a model (or a toy network) and returns plain arrays in a small dataclass; each
has a ``plot_*`` function returning a matplotlib ``Figure`` (made without pyplot, so it draws
under any backend and saves with ``fig.savefig``).  matplotlib is imported only by the plot
functions.

========================  ==================================================================
module                    what it measures
========================  ==================================================================
``profile``               every weight and activation gradient norm, input to output
``split``                 each block's input gradient through the shortcut vs the branch
``signal``                std of every block output and 3x3 response (He et al. 2015 Fig. 7)
``paths``                 path lengths Binomial(n, 1/2); gradient per path length (Veit 2016)
``lesion``                accuracy with each single block deleted (Veit et al. 2016)
``shattered``             df/dx of 1-D toy nets over a grid and its autocorrelation (Balduzzi 2017)
``landscape``             loss along filter-normalised random directions (Li et al. 2018)
========================  ==================================================================
"""
from .digits import train_on_digits
from .landscape import (
    Slice1D, Slice2D, evaluate, filter_normalized_direction, loss_slice_1d, loss_slice_2d,
    plot_loss_slice_1d, plot_loss_slice_2d,
)
from .lesion import Lesion, delete_block, lesion_study, plot_lesion
from .paths import (
    PathGradients, PathLengths, path_gradient_magnitude, path_length_distribution, plot_paths,
)
from .profile import GradientProfile, gradient_profile, plot_gradient_profile, weight_layers
from .shattered import (
    Shattering, autocorrelation, input_gradient, plot_shattering, shattering, toy_network,
)
from .signal import RECTIFIED_GAUSSIAN_STD, ForwardSignal, forward_signal, plot_forward_signal
from .split import GradientParts, GradientSplit, gradient_split, plot_gradient_split, record_split

__all__ = [
    "train_on_digits",
    "GradientProfile", "gradient_profile", "weight_layers", "plot_gradient_profile",
    "GradientParts", "record_split", "GradientSplit", "gradient_split", "plot_gradient_split",
    "RECTIFIED_GAUSSIAN_STD", "ForwardSignal", "forward_signal", "plot_forward_signal",
    "PathLengths", "path_length_distribution", "PathGradients", "path_gradient_magnitude",
    "plot_paths",
    "Lesion", "lesion_study", "delete_block", "plot_lesion",
    "Shattering", "shattering", "toy_network", "input_gradient", "autocorrelation",
    "plot_shattering",
    "Slice1D", "Slice2D", "filter_normalized_direction", "evaluate", "loss_slice_1d",
    "loss_slice_2d", "plot_loss_slice_1d", "plot_loss_slice_2d",
]
