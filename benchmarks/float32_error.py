"""How far float32 is from float64 in one training step, for tinyresnet and for PyTorch, on the CPU.

    python3 benchmarks/float32_error.py

The GPU tests (tests/gpu/test_gpu_parity.py) compare a float32 step on the GPU with the same step
on the CPU; both differ from the exact result by float32 round-off, so their tolerance comes
from this measurement: one step (forward, mean cross-entropy, backward) of ResNet-18 and
ResNet-50 at batch 8, 64x64, in training mode, from the same weights, in float32 and in float64.
Prints, per network and library, the relative error of the loss, the norm-wise relative error of
all parameter gradients taken as one vector, and the worst one tensor's gradient has (a tensor
whose gradient nearly cancels, a BN shift's say, is ill-conditioned on its own).  Torch is
optional (its rows are left out without it).  Not a timing benchmark.
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinyresnet as tr  # noqa: E402
from tinyresnet import models, nn  # noqa: E402

BATCH, SIZE = 8, 64


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def tinyresnet_step(name, state, x, y, dtype):
    model = models.get_model(name, num_classes=10).to(dtype).train()
    model.load_state_dict({k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in state.items()})
    loss_fn = nn.CrossEntropyLoss()
    loss = float(loss_fn(model(x.astype(dtype)), y))
    model.zero_grad()
    model.backward(loss_fn.backward())
    return loss, {n: tr.to_numpy(p.grad) for n, p in model.named_parameters()}


def torch_step(name, state, x, y, dtype):
    import torch

    sys.path.insert(0, str(ROOT / "tests" / "models"))
    import _torch_reference as ref

    block, layers = {"resnet18": (ref.BasicBlock, [2, 2, 2, 2]),
                     "resnet50": (ref.Bottleneck, [3, 4, 6, 3])}[name]
    model = ref.ResNet(block, layers, num_classes=10)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    model = model.to(tdtype).train()
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x).to(tdtype)),
                                             torch.from_numpy(y))
    loss.backward()
    return loss.detach().item(), {n: p.grad.numpy() for n, p in model.named_parameters()}


def main():
    try:
        import torch  # noqa: F401
        sides = {"tinyresnet": tinyresnet_step, "torch": torch_step}
    except ImportError:
        sides = {"tinyresnet": tinyresnet_step}
    print("| network | library | loss | all gradients | worst tensor's gradient (tensor) |")
    print("|---|---|---|---|---|")
    for name in ("resnet18", "resnet50"):
        tr.manual_seed(0)
        state = models.get_model(name, num_classes=10).double().state_dict()
        rng = np.random.default_rng(2)
        x = rng.standard_normal((BATCH, 3, SIZE, SIZE))
        y = rng.integers(0, 10, BATCH)
        for side, step in sides.items():
            loss64, grads64 = step(name, state, x, y, np.float64)
            loss32, grads32 = step(name, state, x, y, np.float32)
            worst = max(grads64, key=lambda k: _rel(grads32[k], grads64[k]))
            every = _rel(np.concatenate([grads32[k].ravel() for k in grads64]),
                         np.concatenate([grads64[k].ravel() for k in grads64]))
            print(f"| {name} | {side} | {abs(loss32 - loss64) / abs(loss64):.1e} | {every:.1e} | "
                  f"{_rel(grads32[worst], grads64[worst]):.1e} ({worst}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
