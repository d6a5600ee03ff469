"""torchvision weights in tinyresnet, and back: PyTorch ``.pth`` state dicts <-> ``.npz`` files.

tinyresnet's module names equal torchvision's, so a state dict of any network torchvision's
``resnet.py`` builds (ResNet-18 to 152, Wide ResNet-50-2 and 101-2, ResNeXt-50 32x4d, ResNeXt-101
32x8d and 64x4d) is a tinyresnet state dict once its tensors are NumPy arrays:

    sd = interop.load_npz("resnet50.npz")           # {"conv1.weight": array, ...}
    model = models.resnet50(); model.load_state_dict(sd)

Converting needs PyTorch once, on a machine that has it; torch is imported only inside the
functions that read or write ``.pth`` files or tensors, never by ``import tinyresnet``:

    interop.pth_to_npz("resnet50-11ad3fa6.pth", "resnet50.npz")

``.npz`` files are plain arrays in a zip: written without pickled objects and always read with
``allow_pickle=False``, so loading one cannot run code.  ``.pth`` files are read with
``torch.load(weights_only=True)``, PyTorch's loader that refuses arbitrary pickled objects.
"""
from collections import OrderedDict

import numpy as np

from .backend import to_numpy

__all__ = [
    "state_dict_from_torch", "state_dict_to_torch", "save_npz", "load_npz",
    "pth_to_npz", "npz_to_pth", "load_weights",
]


def _import_torch(op):
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"interop.{op}: reading or writing PyTorch files needs torch (pip install torch); "
            f".npz files need only NumPy"
        ) from None
    return torch


def _unwrap(state_dict):
    """The state dict inside a training checkpoint ({"state_dict": ...} or {"model": ...}),
    with the "module." prefix of DataParallel removed."""
    for key in ("state_dict", "model"):
        if key in state_dict and isinstance(state_dict[key], dict):
            state_dict = state_dict[key]
    if state_dict and all(k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def state_dict_from_torch(state_dict):
    """name -> NumPy array, from a dict of torch tensors (or arrays); keys and order kept.

    bfloat16 tensors, which NumPy cannot hold, become float32.
    """
    out = OrderedDict()
    for k, v in _unwrap(state_dict).items():
        if hasattr(v, "detach"):  # a torch tensor
            v = v.detach().cpu()
            if str(v.dtype) == "torch.bfloat16":
                v = v.float()
            v = v.numpy()
        out[k] = np.array(to_numpy(v))
    return out


def state_dict_to_torch(state_dict):
    """name -> torch tensor, from a dict of NumPy (or CuPy) arrays, e.g. ``model.state_dict()``."""
    torch = _import_torch("state_dict_to_torch")
    return OrderedDict((k, torch.from_numpy(np.array(to_numpy(v)))) for k, v in state_dict.items())


def save_npz(state_dict, path):
    """Write a state dict (or a model's) as an ``.npz`` of plain numeric arrays."""
    if hasattr(state_dict, "state_dict"):
        state_dict = state_dict.state_dict()
    arrays = OrderedDict()
    for k, v in state_dict.items():
        a = np.asarray(to_numpy(v))
        if a.dtype.kind not in "biuf":
            raise TypeError(
                f"interop.save_npz: {k!r} has dtype {a.dtype}; only numeric arrays are saved"
            )
        arrays[k] = a
    np.savez(path, **arrays)


def load_npz(path):
    """Read an ``.npz`` state dict (allow_pickle=False): OrderedDict name -> array."""
    with np.load(path, allow_pickle=False) as f:
        return OrderedDict((k, f[k]) for k in f.files)


def pth_to_npz(pth_path, npz_path):
    """Convert a PyTorch state dict file (e.g. torchvision's resnet50-*.pth) to ``.npz``."""
    torch = _import_torch("pth_to_npz")
    save_npz(state_dict_from_torch(torch.load(pth_path, map_location="cpu", weights_only=True)),
             npz_path)


def npz_to_pth(npz_path, pth_path):
    """Convert an ``.npz`` state dict to a PyTorch ``.pth`` that torchvision models load."""
    torch = _import_torch("npz_to_pth")
    torch.save(state_dict_to_torch(load_npz(npz_path)), pth_path)


def load_weights(model, source, strict=True):
    """Load torchvision-keyed weights into a model.

    source : a dict of NumPy arrays or torch tensors, or the path of an ``.npz`` or ``.pth`` file.
    Returns (missing, unexpected) as ``Module.load_state_dict``, which raises, naming the first
    missing or mismatched key and its expected shape, when the weights are of another
    architecture.
    """
    if isinstance(source, dict):
        state_dict = state_dict_from_torch(source)
    else:
        path = str(source)
        if path.endswith(".npz"):
            state_dict = load_npz(path)
        elif path.endswith((".pth", ".pt")):
            torch = _import_torch("load_weights")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            state_dict = state_dict_from_torch(loaded)
        else:
            raise ValueError(f"interop.load_weights: expected a .npz or .pth file, got {path!r}")
    return model.load_state_dict(state_dict, strict=strict)
