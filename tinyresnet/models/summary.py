r"""``summary(model, input_shape)``: every layer's output shape, parameters and multiply-adds.

Multiply-accumulates (MACs) are counted where the arithmetic is, in the convolutions and the
linear layer:

.. math::  \mathrm{MACs}_{\mathrm{conv}} = N \, C_{out} H_o W_o \cdot \frac{C_{in}}{g} k_h k_w,
           \qquad \mathrm{MACs}_{\mathrm{linear}} = N \cdot \mathrm{in} \cdot \mathrm{out}

BN, ReLU, pooling and the residual additions are counted as 0: they are a few operations per
element (under 1% of a ResNet's total), and leaving them out is the convention behind
torchvision's published figures (1.81 / 3.66 / 4.09 / 7.80 / 11.51 GMACs at 224x224) and the 2015
paper's Table 1 (3.8 / 7.6 / 11.3 "FLOPs" for ResNet-50/101/152, which are multiply-adds, with the
stride on the 1x1 conv).  Biases are not counted either.

No numbers are computed: every known layer is swapped, for the duration of the call, for its shape
rule, and returns a zero-strided placeholder of the right shape, so the model's own forward code
(blocks, shortcuts, additions) wires the shapes together in milliseconds even at 224x224.  A layer
without a rule runs its real forward on the placeholder (and counts 0 MACs).
"""
import math
from dataclasses import dataclass, field

from .. import functional as F
from .. import nn
from ..backend import get_array_module
from ..functional._validate import pair
from ..functional.pool import _ceil_output_size
from .shortcut import ShortcutA

__all__ = ["LayerSummary", "ModelSummary", "summary"]


@dataclass
class LayerSummary:
    """One leaf layer: qualified name, class name, output shape, own parameters, MACs."""

    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int


@dataclass
class ModelSummary:
    """The table ``summary`` returns; ``str()`` of it prints the table and the totals."""

    model: str
    input_shape: tuple
    output_shape: tuple
    rows: list = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    total_macs: int = 0

    @property
    def gmacs(self):
        return self.total_macs / 1e9

    def __str__(self):
        header = ("Layer (type)", "Output shape", "Params", "MACs")
        body = [(f"{r.name} ({r.type})", str(r.output_shape), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(4)]

        def fmt(line):
            return "  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1])]
                             + [c.rjust(w) for c, w in zip(line[2:], widths[2:])])

        rule = "-" * len(fmt(header))
        lines = [f"{self.model} summary, input {self.input_shape} -> output {self.output_shape}",
                 rule, fmt(header), rule] + [fmt(line) for line in body] + [rule]
        lines += [
            f"Total params: {self.total_params:,} (trainable {self.trainable_params:,})",
            f"Total MACs: {self.total_macs:,} ({self.gmacs:.2f} G)",
        ]
        return "\n".join(lines)


def _same(m, shape):
    return shape, 0


def _batchnorm(m, shape):
    if len(shape) != 4 or shape[1] != m.num_features:
        raise ValueError(
            f"batchnorm2d: expected input (N, {m.num_features}, H, W), got shape {shape}"
        )
    return shape, 0


def _conv(m, shape):
    if len(shape) != 4 or shape[1] != m.in_channels:
        raise ValueError(
            f"conv2d: expected input with {m.in_channels} channels, "
            f"shape (N, {m.in_channels}, H, W), "
            f"got shape {shape}"
        )
    if isinstance(m.padding, str):  # "same" keeps the size (stride 1), "valid" pads nothing
        Ho, Wo = shape[2:] if m.padding == "same" else F.conv_output_shape(
            shape, m.kernel_size, m.stride, 0, m.dilation, "conv2d")
    else:
        Ho, Wo = F.conv_output_shape(shape, m.kernel_size, m.stride, m.padding, m.dilation,
                                     "conv2d")
    kh, kw = m.kernel_size
    N = shape[0]
    fan_in = m.in_channels // m.groups * kh * kw  # an output sees only its group's channels
    return (N, m.out_channels, Ho, Wo), N * m.out_channels * Ho * Wo * fan_in


def _pool(m, shape):
    dilation = getattr(m, "dilation", 1)
    if len(shape) != 4:
        raise ValueError(f"pool2d: expected a 4-D input (N, C, H, W), got shape {shape}")
    Ho, Wo = F.conv_output_shape(shape, m.kernel_size, m.stride, m.padding, dilation, "pool2d")
    if getattr(m, "ceil_mode", False):
        geometry = [pair(v, "", "pool2d") for v in (m.kernel_size, m.stride, m.padding, dilation)]
        Ho, Wo = (_ceil_output_size(*args) for args in zip(shape[2:], *geometry))
    return shape[:2] + (Ho, Wo), 0


def _adaptive_pool(m, shape):
    if len(shape) != 4:
        raise ValueError(f"adaptive pool2d: expected a 4-D input (N, C, H, W), got shape {shape}")
    return shape[:2] + tuple(s if o is None else o for o, s in zip(m.output_size, shape[2:])), 0


def _flatten(m, shape):
    return shape[: m.start_dim] + (math.prod(shape[m.start_dim :]),), 0


def _linear(m, shape):
    if len(shape) != 2 or shape[1] != m.in_features:
        raise ValueError(f"linear: expected input of shape (N, {m.in_features}), got {shape}")
    return (shape[0], m.out_features), shape[0] * m.in_features * m.out_features


def _shortcut_a(m, shape):
    if len(shape) != 4 or shape[1] != m.in_channels:
        raise ValueError(
            f"ShortcutA: expected input with {m.in_channels} channels, got shape {shape}"
        )
    s = m.stride
    return (shape[0], m.out_channels, -(-shape[2] // s), -(-shape[3] // s)), 0


_SHAPE_RULES = {
    nn.Conv2d: _conv, nn.BatchNorm2d: _batchnorm, nn.ReLU: _same, nn.Identity: _same,
    nn.Dropout: _same, nn.MaxPool2d: _pool, nn.AvgPool2d: _pool,
    nn.AdaptiveAvgPool2d: _adaptive_pool, nn.AdaptiveMaxPool2d: _adaptive_pool,
    nn.Flatten: _flatten, nn.Linear: _linear,
    ShortcutA: _shortcut_a,
}


def summary(model, input_shape):
    """Tabulate a model layer by layer without running its arithmetic.

    Parameters
    ----------
    model : nn.Module
    input_shape : (C, H, W) for one sample, or (N, C, H, W); MACs are for that whole input

    Returns
    -------
    ModelSummary : ``rows`` (one LayerSummary per leaf layer, in call order), ``total_params``,
        ``trainable_params``, ``total_macs``, ``output_shape``; print it for the table.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 3:
        input_shape = (1,) + input_shape
    if len(input_shape) != 4:
        raise ValueError(
            f"summary: input_shape must be (C, H, W) or (N, C, H, W), got {input_shape}"
        )
    params = model.parameters()
    reference = params[0].data if params else None
    xp = get_array_module(reference)
    dtype = reference.dtype if reference is not None else xp.float32
    names = {id(m): name for name, m in model.named_modules()}
    rows = []

    def placeholder(shape):
        # Zero strides: one element of memory however large the shape.
        return xp.broadcast_to(xp.zeros((), dtype=dtype), shape)

    def counting_forward(m):
        rule = _SHAPE_RULES.get(type(m))
        real_forward = m.forward

        def forward(x, *args):
            if rule is None:
                y, macs = real_forward(x, *args), 0
            else:
                shape, macs = rule(m, tuple(x.shape))
                y = placeholder(shape)
            own = sum(int(p.size) for p in m._parameters.values() if p is not None)
            rows.append(
                LayerSummary(names[id(m)], type(m).__name__, tuple(y.shape), own, int(macs))
            )
            return y

        return forward

    leaves = [m for m in model.modules() if not m._modules]
    modes = {id(m): m.training for m in model.modules()}
    try:
        model.eval()
        for m in leaves:
            object.__setattr__(m, "forward", counting_forward(m))
        with nn.no_grad():
            y = model(placeholder(input_shape))
    finally:
        for m in leaves:
            m.__dict__.pop("forward", None)
        for m in model.modules():
            object.__setattr__(m, "training", modes[id(m)])
    return ModelSummary(
        model=type(model).__name__, input_shape=input_shape, output_shape=tuple(y.shape), rows=rows,
        total_params=sum(int(p.size) for p in params),
        trainable_params=sum(int(p.size) for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in rows),
    )
