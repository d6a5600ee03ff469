"""Checkpoints: one ``.npz`` file, written atomically, read with ``allow_pickle=False``.

Layout of the archive (every entry a NumPy array, so no pickle is ever needed)::

    model/<state_dict key>        the model's parameters and buffers ("model/layer1.0.conv1.weight")
    optimizer/__json__            the optimizer's state_dict with every array replaced by a
    optimizer/<path>              reference to the entry holding it ("optimizer/state/0/momentum_buffer")
    scheduler/__json__, scheduler/<path>      the same for the learning-rate scheduler
    loader/__json__               the training loader's position (epoch, and what it needs to
                                  reproduce its shuffle order)
    rng/__json__                  tinyresnet.random's generator state
    meta/__json__                 format version, epoch, step, model name and constructor kwargs,
                                  the architecture fingerprint, and the caller's extra fields

JSON strings are stored as 0-d unicode arrays.  Python floats survive the round trip exactly
(``json`` writes the shortest repr that reads back to the same double), which resuming bit for bit
relies on.

Atomic write: the archive goes to a temporary file in the destination folder, is flushed and
fsync'ed, and only then renamed over the old file with ``os.replace`` (atomic on POSIX and
Windows).  A crash at any point leaves either the old checkpoint or the new one, never half of one.

The architecture fingerprint hashes the ordered list of state_dict keys and shapes (not dtypes,
so a float64 copy of a network matches its float32 original).  Loading a checkpoint into a model
with another fingerprint is refused with a message naming both architectures.
"""
import hashlib
import json
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from .. import random as tr_random
from .._io import atomic_savez
from ..backend import to_numpy

__all__ = [
    "CheckpointError", "Checkpoint", "architecture_fingerprint", "describe_architecture",
    "save_checkpoint", "read_checkpoint", "load_checkpoint",
]

FORMAT_VERSION = 1
_JSON = "__json__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit what it is loaded into."""


# ---- architecture identity ------------------------------------------------------------------
def _layout(state_dict):
    return [[k, [int(s) for s in np.shape(v)]] for k, v in state_dict.items()]


def _fingerprint_of_layout(layout):
    text = ";".join(f"{k}:{'x'.join(map(str, shape))}" for k, shape in layout)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_fingerprint(model):
    """A 16-hex-digit hash of the model's state_dict keys and shapes, in order.

    Two models share it exactly when one's state_dict loads into the other's.
    """
    return _fingerprint_of_layout(_layout(model.state_dict()))


def describe_architecture(model_name=None, model_kwargs=None, fingerprint=None, fallback="model"):
    """'cifar_resnet(depth=20, in_channels=1) [arch 3fa1...]': how errors name an architecture."""
    if model_name:
        args = ", ".join(f"{k}={v!r}" for k, v in (model_kwargs or {}).items())
        text = f"{model_name}({args})"
    else:
        text = fallback
    return f"{text} [arch {fingerprint}]" if fingerprint else text


# ---- nested state <-> JSON skeleton + arrays ------------------------------------------------
def _encode(obj, path, arrays):
    """Replace every array in a nested state by {"__array__": key}, storing it in ``arrays``.

    Dicts become {"__dict__": [[key, value], ...]} so integer keys (optimizer state is keyed by
    parameter index) and key order survive; tuples are marked so they come back as tuples.
    """
    if isinstance(obj, np.generic) or hasattr(obj, "__array_interface__") or \
            type(obj).__module__.startswith("cupy"):
        arrays[path] = to_numpy(obj)
        return {"__array__": path, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _encode(v, f"{path}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"save_checkpoint: cannot store {type(obj).__name__} at '{path}'; state_dicts may hold "
        f"arrays, numbers, strings, None, and dicts/lists/tuples of them"
    )


def _decode(obj, archive):
    if isinstance(obj, list):
        return [_decode(v, archive) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            value = archive[obj["__array__"]]
            return value[()] if obj.get("scalar") else value
        if "__dict__" in obj:
            return OrderedDict((k, _decode(v, archive)) for k, v in obj["__dict__"])
        if "__tuple__" in obj:
            return tuple(_decode(v, archive) for v in obj["__tuple__"])
    return obj


def _put_json(arrays, section, value):
    arrays[f"{section}/{_JSON}"] = np.array(json.dumps(value))


# ---- writing --------------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer=None, scheduler=None, *, epoch=0, step=0, loader=None,
                    model_name=None, model_kwargs=None, extra=None):
    """Write model, optimizer, scheduler, loader and RNG state to one ``.npz``, atomically.

    Parameters
    ----------
    path : str or PathLike, the ``.npz`` to (over)write
    model : Module
    optimizer, scheduler : objects with ``state_dict()``, or None
    epoch : int, the number of completed epochs (training resumes at this epoch)
    step : int, batches already done within ``epoch`` (non-zero only for an interrupted epoch)
    loader : the training DataLoader, or None; its ``state_dict()`` is stored when it has one
    model_name, model_kwargs : how to rebuild the model (``models.get_model(name, **kwargs)``)
    extra : JSON-able dict of anything else (class names, preprocessing, best accuracy, ...)
    """
    arrays = OrderedDict()
    state = model.state_dict()
    for key, value in state.items():
        arrays[f"model/{key}"] = to_numpy(value)
    layout = _layout(state)
    for section, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            _put_json(arrays, section, _encode(obj.state_dict(), section, arrays))
    if loader is not None:
        loader_state = loader.state_dict() if hasattr(loader, "state_dict") else {}
        _put_json(arrays, "loader", _encode(loader_state, "loader", arrays))
    _put_json(arrays, "rng", tr_random.get_rng_state())
    _put_json(arrays, "meta", {
        "format": FORMAT_VERSION,
        "tinyresnet_version": __version__,
        "epoch": int(epoch),
        "step": int(step),
        "model_name": model_name,
        "model_kwargs": model_kwargs or {},
        "architecture": _fingerprint_of_layout(layout),
        "layout": layout,
        "extra": extra or {},
    })
    atomic_savez(path, arrays)


# ---- reading --------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """The contents of a checkpoint file, decoded (see the module docstring for the layout)."""

    path: str
    meta: dict
    model_state: OrderedDict
    optimizer_state: object = None
    scheduler_state: object = None
    loader_state: object = None
    rng_state: dict = None
    extra: dict = field(default_factory=dict)

    @property
    def epoch(self):
        return self.meta["epoch"]

    @property
    def step(self):
        return self.meta["step"]

    @property
    def model_name(self):
        return self.meta.get("model_name")

    @property
    def model_kwargs(self):
        return dict(self.meta.get("model_kwargs") or {})

    @property
    def architecture(self):
        return describe_architecture(self.model_name, self.model_kwargs, self.meta["architecture"],
                                     fallback="an unnamed model")


def read_checkpoint(path):
    """Read and decode a checkpoint without applying it; CheckpointError when it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = set(archive.files)
            if f"meta/{_JSON}" not in files:
                raise CheckpointError(
                    f"'{path}' is an .npz archive but not a tinyresnet checkpoint (no meta entry)"
                )
            # Read every entry now: the archive closes when this block ends.
            data = {k: archive[k] for k in files}
    except CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"'{path}' is not a readable checkpoint ({e})") from None

    def section(name):
        key = f"{name}/{_JSON}"
        return _decode(json.loads(str(data[key])), data) if key in data else None

    meta = json.loads(str(data[f"meta/{_JSON}"]))
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' has checkpoint format {meta.get('format')!r}; this tinyresnet reads "
            f"format {FORMAT_VERSION}"
        )
    model_state = OrderedDict((k, data[f"model/{k}"]) for k, _ in meta["layout"])
    return Checkpoint(
        path=path, meta=meta, model_state=model_state,
        optimizer_state=section("optimizer"), scheduler_state=section("scheduler"),
        loader_state=section("loader"),
        rng_state=json.loads(str(data[f"rng/{_JSON}"])) if f"rng/{_JSON}" in data else None,
        extra=meta.get("extra") or {},
    )


def _first_difference(expected, got):
    """The first (key, shape) entry where two layouts part ways, as a short phrase."""
    for (k1, s1), (k2, s2) in zip(expected, got):
        if k1 != k2 or s1 != s2:
            return f"the model has '{k1}' {tuple(s1)} where the checkpoint has '{k2}' {tuple(s2)}"
    return f"the model has {len(expected)} tensors, the checkpoint {len(got)}"


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, loader=None,
                    restore_rng=False, model_name=None, model_kwargs=None):
    """Read a checkpoint and load it into whichever of model/optimizer/scheduler/loader are given.

    The model's architecture fingerprint must match the checkpoint's; otherwise CheckpointError
    names both (``model_name``/``model_kwargs`` describe the model for that message).  With
    ``restore_rng`` the package generator continues exactly where the saved run left it.
    Returns the Checkpoint.
    """
    ckpt = read_checkpoint(path)
    if model is not None:
        layout = _layout(model.state_dict())
        fingerprint = _fingerprint_of_layout(layout)
        if fingerprint != ckpt.meta["architecture"]:
            target = describe_architecture(model_name, model_kwargs, fingerprint,
                                           fallback=type(model).__name__)
            raise CheckpointError(
                f"checkpoint '{ckpt.path}' holds {ckpt.architecture}, which cannot be loaded into "
                f"{target}: {_first_difference(layout, ckpt.meta['layout'])}"
            )
        model.load_state_dict(ckpt.model_state)
    for name, obj, state in (("optimizer", optimizer, ckpt.optimizer_state),
                             ("scheduler", scheduler, ckpt.scheduler_state)):
        if obj is None:
            continue
        if state is None:
            raise CheckpointError(f"checkpoint '{ckpt.path}' holds no {name} state")
        obj.load_state_dict(state)
    if loader is not None and ckpt.loader_state and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(ckpt.loader_state)
    if restore_rng and ckpt.rng_state is not None:
        tr_random.set_rng_state(ckpt.rng_state)
    return ckpt
