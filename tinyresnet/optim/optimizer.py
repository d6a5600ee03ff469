"""Optimizer: the base of SGD, Adam and AdamW.

An optimizer holds ``param_groups`` (a list of dicts: ``"params"`` plus that group's
hyper-parameters, as in PyTorch) and ``state`` (per-parameter buffers keyed by the parameter's
index in the order the parameters were given).  ``step()`` reads each ``p.grad`` and updates
``p.data`` in place, so the update works unchanged on NumPy and CuPy arrays and keeps the
parameter's dtype.

State dict format
-----------------
``state_dict()`` has PyTorch's layout (``torch.optim.Optimizer.state_dict``)::

    {"state": {0: {"momentum_buffer": array}, ...},   # by global parameter index; Adam's
                                                      # {"step": 10, "exp_avg": ..., ...}
     "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}, ...]}

Arrays are CPU copies; numbers stay Python numbers, tuples (``betas``) tuples.  Parameters without
a gradient yet have no entry in ``state``, as in PyTorch.  ``train.save_checkpoint`` stores it
without pickle; ``flatten_state_dict`` turns it into the flat ``{"state.3.momentum_buffer": array,
"param_groups.0.lr": 0.1, ...}`` dict that ``numpy.savez`` takes as it is, the format of
checkpoints before this layout.  ``load_state_dict`` reads either, and a PyTorch optimizer's own
state dict (tensors included) as long as its hyper-parameters are ones this optimizer has (PyTorch's
switches such as ``foreach`` or ``maximize=False`` that do not change the update are skipped).
"""
import numpy as np

from ..backend import device_of, get_array_module, to_device, to_numpy
from ..functional.parallel import MIN_ELEMENTS, get_num_threads, parallel_for
from ..nn.parameter import Parameter

__all__ = ["Optimizer", "flatten_state_dict", "unflatten_state_dict"]

# Keys a scheduler adds to a param group (torch's names): kept, saved and restored with it.
SCHEDULER_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
# torch.optim switches that select an implementation, not an update, with the value under which
# torch's update is ours; a state dict from torch holding them loads.
_TORCH_SWITCHES = {"foreach": None, "differentiable": False, "fused": None, "capturable": False,
                   "maximize": False, "amsgrad": False}


def _plain(value):
    """A value read back from an .npz (0-d or 1-d array) as the Python number or tuple it was."""
    if hasattr(value, "detach"):  # a torch tensor (PyTorch's own state dicts)
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def flatten_state_dict(state_dict):
    """PyTorch's nested layout -> a flat ``{str: array or number}`` dict for ``numpy.savez``.

    Keys ``"param_groups.<g>.<name>"`` (``params`` an int64 array, tuples 1-d float arrays) and
    ``"state.<i>.<name>"``.
    """
    out = {}
    for g, group in enumerate(state_dict["param_groups"]):
        for key, value in group.items():
            if key == "params":
                value = np.asarray(value, dtype=np.int64)
            elif isinstance(value, tuple):
                value = np.asarray(value, dtype=np.float64)
            out[f"param_groups.{g}.{key}"] = value
    for i, buffers in state_dict["state"].items():
        for key, value in buffers.items():
            out[f"state.{i}.{key}"] = value
    return out


def unflatten_state_dict(flat, owner="Optimizer"):
    """The inverse of :func:`flatten_state_dict` (values as read from an .npz are accepted)."""
    groups, state = {}, {}
    for key, value in flat.items():
        kind, _, rest = key.partition(".")
        number, _, field = rest.partition(".")
        if kind not in ("param_groups", "state") or not number.isdigit() or not field:
            raise ValueError(
                f"{owner}.load_state_dict: unexpected key {key!r}; expected "
                "'param_groups.<g>.<name>' or 'state.<i>.<name>' (or PyTorch's layout, a dict "
                "with 'state' and 'param_groups')"
            )
        (groups if kind == "param_groups" else state).setdefault(int(number), {})[field] = value
    param_groups = []
    for g in sorted(groups):
        group = dict(groups[g])
        group["params"] = [int(i) for i in np.asarray(group.get("params", ())).reshape(-1)]
        param_groups.append(group)
    if sorted(groups) != list(range(len(groups))):
        raise ValueError(f"{owner}.load_state_dict: param groups {sorted(groups)} are not numbered "
                         "0, 1, ...")
    return {"state": state, "param_groups": param_groups}


class Optimizer:
    """Base class: subclasses set ``defaults`` and write ``_update(p, grad, state, group)``.

    Parameters
    ----------
    params : iterable of Parameter, or of dicts ``{"params": [...], "lr": ...}`` (param groups
        whose keys override the defaults for their parameters)
    defaults : dict of hyper-parameters (``lr`` among them)
    """

    # PyTorch switches of this optimizer's torch twin at the value under which its update is ours
    _torch_switches = {}

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(
                f"{name}: params must be an iterable of Parameters (e.g. model.parameters()), "
                "got a single Parameter; wrap it in a list"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list; nothing to optimize")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        seen = set()
        for group in groups:
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{name}: param groups must be dicts with a 'params' list")
            unknown = set(group) - set(defaults) - {"params"} - SCHEDULER_KEYS
            if unknown:
                raise ValueError(
                    f"{name}: unknown hyper-parameter(s) {sorted(unknown)} in a param group; "
                    f"expected some of {sorted(defaults)}"
                )
            group = {**self.defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Parameter):
                    raise TypeError(
                        f"{name}: expected tinyresnet.nn.Parameter objects, got {type(p).__name__}"
                    )
                if id(p) in seen:
                    raise ValueError(
                        f"{name}: a parameter appears twice; it would be updated twice per step"
                    )
                seen.add(id(p))
            self.param_groups.append(group)
        for group in self.param_groups:
            self._check_hyperparameters(group)

    def _check_hyperparameters(self, group):
        """Raise ValueError for a hyper-parameter out of range; subclasses extend."""
        name = type(self).__name__
        if not group["lr"] >= 0:
            raise ValueError(f"{name}: lr must be >= 0, got {group['lr']}")
        if not group["weight_decay"] >= 0:
            raise ValueError(f"{name}: weight_decay must be >= 0, got {group['weight_decay']}")

    # ---- the learning rate, as schedulers and users see it ------------------------------------
    @property
    def lr(self):
        """The first group's learning rate; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        for group in self.param_groups:
            group["lr"] = value

    # ---- the update ---------------------------------------------------------------------------
    def _indexed_params(self):
        """(global index, parameter, group) for every parameter, in the order given."""
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield index, p, group
                index += 1

    def step(self):
        """Update every parameter that has a gradient (``p.grad is None`` means skip it).

        On the CPU the parameters are shared out over the ops' threads
        (``functional.set_num_threads``) in shares of about equal size; each thread updates whole
        tensors, so the result is the same as one thread's.
        """
        todo = []
        for index, p, group in self._indexed_params():
            if p.grad is None or not p.requires_grad:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(
                    f"{type(self).__name__}: parameter {index} has shape {p.data.shape} but its "
                    f"gradient has shape {p.grad.shape}"
                )
            get_array_module(p.data, p.grad)  # refuses a NumPy/CuPy mix with a clear message
            todo.append((p, self.state.setdefault(index, {}), group))
        if not all(isinstance(p.data, np.ndarray) for p, _, _ in todo):  # the GPU: one stream
            shares = [todo]
        else:
            shares = _equal_shares(todo, get_num_threads())

        def update(lo, hi):
            for share in shares[lo:hi]:
                for p, state, group in share:
                    self._update(p, p.grad, state, group)

        parallel_for(update, len(shares))

    def _update(self, p, grad, state, group):
        raise NotImplementedError

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (to None by default, as PyTorch 2 does)."""
        for _, p, _ in self._indexed_params():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    # ---- state --------------------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {name: buffer}}, "param_groups": [{..., "params": [indices]}]}``,
        PyTorch's layout (module docstring).

        Arrays are copies on the CPU, so later steps do not change a saved state dict.
        """
        param_groups, index = [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            param_groups.append(packed)
        state = {
            i: {k: np.array(to_numpy(v)) if hasattr(v, "shape") else v for k, v in buffers.items()}
            for i, buffers in sorted(self.state.items())
        }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and buffers saved by :meth:`state_dict`: PyTorch's layout, the
        flat one (an .npz, older checkpoints), or a PyTorch optimizer's own state dict.

        Buffers are copied onto each parameter's device and cast to its dtype.  Raises ValueError
        when the saved optimizer had other param groups, other parameter shapes or other keys.
        """
        name = type(self).__name__
        params = {i: p for i, p, _ in self._indexed_params()}
        if set(state_dict) != {"state", "param_groups"}:
            state_dict = unflatten_state_dict(state_dict, name)
        groups = dict(enumerate(dict(g) for g in state_dict["param_groups"]))
        state = {int(i): dict(buffers) for i, buffers in state_dict["state"].items()}
        switches = {**_TORCH_SWITCHES, **self._torch_switches}
        for group in groups.values():
            for key, neutral in switches.items():
                if key in group and key not in self.defaults and group[key] == neutral:
                    del group[key]  # PyTorch's implementation switch, at its plain setting
        if sorted(groups) != list(range(len(self.param_groups))):
            raise ValueError(
                f"{name}.load_state_dict: the saved optimizer has {len(groups)} param group(s), "
                f"this one has {len(self.param_groups)}"
            )
        for g, group in enumerate(self.param_groups):
            saved = len(groups[g].get("params", ()))
            if saved != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {g} held {saved} parameters when "
                    f"saved, this one holds {len(group['params'])}"
                )
            unknown = set(groups[g]) - set(self.defaults) - {"params"} - SCHEDULER_KEYS
            if unknown:
                raise ValueError(
                    f"{name}.load_state_dict: unknown hyper-parameter(s) {sorted(unknown)} in "
                    f"param group {g}; was the state saved from another optimizer type?"
                )
        new_state = {}
        for i, buffers in sorted(state.items()):
            if i not in params:
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {i}, but there are only "
                    f"{len(params)} parameters"
                )
            p = params[i]
            new_state[i] = {}
            for key, value in buffers.items():
                if hasattr(value, "detach"):  # a torch tensor
                    value = value.detach().cpu().numpy()
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state.{i}.{key} has shape {value.shape}, "
                            f"parameter {i} has shape {p.data.shape}"
                        )
                    value = to_device(value.astype(p.data.dtype, copy=True), device_of(p.data))
                else:
                    value = _plain(value)
                    if key == "step" and float(value).is_integer():
                        value = int(value)  # PyTorch keeps the step count as a float tensor
                new_state[i][key] = value
        for g, group in enumerate(self.param_groups):
            for key, value in groups[g].items():
                if key != "params":
                    group[key] = _plain(value)
            self._check_hyperparameters(group)
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _equal_shares(todo, parts):
    """Split the (parameter, state, group) list, in order, into at most ``parts`` runs of about
    equal total size (ResNet's last layers hold most of its weights: equal counts would not do)."""
    sizes = np.array([p.data.size for p, _, _ in todo])
    total = int(sizes.sum())
    if parts <= 1 or total < MIN_ELEMENTS * parts:
        return [todo]
    # a tensor goes to the share its middle falls in
    middles = np.cumsum(sizes) - sizes / 2
    cuts = np.searchsorted(middles, total * np.arange(1, parts) / parts)
    bounds = sorted({0, len(todo), *(int(c) for c in cuts)})
    return [todo[a:b] for a, b in zip(bounds, bounds[1:])]
