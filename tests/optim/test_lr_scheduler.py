"""Learning-rate schedules (tinyresnet/optim/lr_scheduler.py): the lr after k calls to step()
equals torch.optim.lr_scheduler's, hand-computed values, state_dict round trips, bad input."""
import math

import numpy as np
import pytest

from tinyresnet import optim
from tinyresnet.nn import Parameter
from tinyresnet.optim import flatten_state_dict
from tinyresnet.optim import lr_scheduler as S

STEPS = 40

SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[10, 25, 25, 33], gamma=0.1),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=15, eta_min=1e-3),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=6),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=9),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e),
    "warmup+cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.05, total_iters=5), m.CosineAnnealingLR(o, T_max=30)],
        milestones=[5],
    ),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=0.5, total_steps=STEPS),
    "OneCycleLR-linear-three-phase": lambda m, o: m.OneCycleLR(
        o, max_lr=1.0, epochs=4, steps_per_epoch=11, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0,
    ),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=STEPS + 5,
                                                        cycle_momentum=False, pct_start=0.45),
    "warmup+multistep": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=3), m.MultiStepLR(o, [10, 20])],
        milestones=[4],
    ),
}


def _lrs(scheduler, steps=STEPS):
    """[lr at epoch 0, after 1 step, ..., after `steps` steps] for the first param group."""
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


def _optimizer(lr=0.1):
    return optim.SGD([Parameter(np.zeros(2)), Parameter(np.zeros(3))], lr=lr, momentum=0.9)


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_matches_torch_lr_sequence(name):
    torch = pytest.importorskip("torch")
    torch_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
    expected = _lrs(SCHEDULES[name](torch.optim.lr_scheduler, torch_opt))
    ours = _lrs(SCHEDULES[name](S, _optimizer()))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.torch
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_one_cycle_momentum_matches_torch(optimizer):
    """SGD's momentum and Adam's first beta cycle opposite to the lr, as torch's."""
    torch = pytest.importorskip("torch")

    def run(module, opt):
        sched = module.OneCycleLR(opt, max_lr=[0.2, 0.4], total_steps=20, pct_start=0.4)
        seen = []
        for _ in range(20):
            opt.step()
            sched.step()
            seen.append([g["momentum"] if "momentum" in g else g["betas"][0]
                         for g in opt.param_groups] + [g["lr"] for g in opt.param_groups])
        return seen

    kwargs = {"momentum": 0.9} if optimizer == "SGD" else {}
    ours = getattr(optim, optimizer)([{"params": [Parameter(np.zeros(2))]},
                                      {"params": [Parameter(np.zeros(1))]}], lr=0.1, **kwargs)
    theirs = getattr(torch.optim, optimizer)([{"params": [torch.zeros(2, requires_grad=True)]},
                                              {"params": [torch.zeros(1, requires_grad=True)]}],
                                             lr=0.1, **kwargs)
    np.testing.assert_allclose(run(S, ours), run(torch.optim.lr_scheduler, theirs), rtol=1e-12)


@pytest.mark.torch
@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.05, cooldown=2, min_lr=0.004),
    dict(mode="min", factor=0.3, patience=0, threshold=0.2, threshold_mode="abs", cooldown=1),
    dict(mode="max", patience=1, threshold_mode="abs", eps=0.02, min_lr=[0.0, 0.05]),
], ids=["defaults", "max-rel-cooldown-min_lr", "min-abs", "max-abs-eps-per-group-min_lr"])
def test_reduce_on_plateau_matches_torch(kwargs, tmp_path):
    torch = pytest.importorskip("torch")
    metrics = np.random.default_rng(3).standard_normal(60).cumsum() * 0.1 + 5.0
    metrics[20:30] = metrics[19]  # a flat stretch: a plateau

    def run(module, opt, sched=None, start=0):
        sched = sched or module.ReduceLROnPlateau(opt, **kwargs)
        seen = []
        for m in metrics[start:]:
            opt.step()
            sched.step(float(m))
            seen.append([g["lr"] for g in opt.param_groups])
        return seen, sched

    def ours_opt(lr=0.1):
        return optim.SGD([{"params": [Parameter(np.zeros(2))]},
                          {"params": [Parameter(np.zeros(1))], "lr": 0.2}], lr=lr)

    theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)]},
                              {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.2}], lr=0.1)
    expected, _ = run(torch.optim.lr_scheduler, theirs)
    ours, _ = run(S, ours_opt())
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert len({tuple(lrs) for lrs in expected}) > 1  # the lr did change: the test can fail

    # saved after 30 epochs through an .npz and resumed, it goes on as the uninterrupted run
    opt = ours_opt()
    first = S.ReduceLROnPlateau(opt, **kwargs)
    for m in metrics[:30]:
        first.step(float(m))
    np.savez(tmp_path / "plateau.npz", **first.state_dict(),
             **{f"optimizer.{k}": v for k, v in flatten_state_dict(opt.state_dict()).items()})
    with np.load(tmp_path / "plateau.npz", allow_pickle=False) as f:
        saved = dict(f)
    opt2 = ours_opt(lr=9.0)
    opt2.load_state_dict({k[10:]: v for k, v in saved.items() if k.startswith("optimizer.")})
    resumed = S.ReduceLROnPlateau(opt2, **kwargs)
    resumed.load_state_dict({k: v for k, v in saved.items() if not k.startswith("optimizer.")})
    rest, _ = run(S, opt2, resumed, start=30)
    np.testing.assert_allclose(rest, expected[30:], rtol=1e-12)


def test_hand_computed_values():
    step = _lrs(S.StepLR(_optimizer(1.0), step_size=2, gamma=0.5), 5)
    assert step == [1, 1, 0.5, 0.5, 0.25, 0.25]
    multi = _lrs(S.MultiStepLR(_optimizer(1.0), milestones=[1, 3], gamma=0.1), 4)
    np.testing.assert_allclose(multi, [1, 0.1, 0.1, 0.01, 0.01], rtol=1e-15)
    cosine = _lrs(S.CosineAnnealingLR(_optimizer(1.0), T_max=4), 4)
    half = math.sqrt(0.5)  # cos(pi / 4)
    np.testing.assert_allclose(cosine, [1, (1 + half) / 2, 0.5, (1 - half) / 2, 0], atol=1e-15)
    warm = _lrs(S.LinearLR(_optimizer(1.0), start_factor=0.25, total_iters=3), 5)
    np.testing.assert_allclose(warm, [0.25, 0.5, 0.75, 1, 1, 1], rtol=1e-15)


def test_paper_schedule_divides_by_ten_at_32k_and_48k():
    sched = S.MultiStepLR(_optimizer(0.1), milestones=[32000, 48000], gamma=0.1)
    seen = {}
    for it in range(1, 64001):
        sched.step()
        if it in (31999, 32000, 47999, 48000, 64000):
            seen[it] = sched.optimizer.lr
    np.testing.assert_allclose([seen[k] for k in sorted(seen)], [0.1, 0.01, 0.01, 1e-3, 1e-3],
                               rtol=1e-14)


def test_sets_every_param_group_from_its_own_base_lr():
    a, b = Parameter(np.zeros(1)), Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.05, 0.005])
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.05, 0.005])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_round_trip_resumes_exactly(name, tmp_path):
    straight = _lrs(SCHEDULES[name](S, _optimizer()), 30)

    opt = _optimizer()
    first = SCHEDULES[name](S, opt)
    part = _lrs(first, 12)
    np.savez(tmp_path / "ckpt.npz",
             **{f"optimizer.{k}": v for k, v in flatten_state_dict(opt.state_dict()).items()},
             **{f"scheduler.{k}": v for k, v in first.state_dict().items()})
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        saved = dict(f)

    opt2 = _optimizer(lr=7.0)  # a fresh run: its own lr is replaced by the checkpoint's
    second = SCHEDULES[name](S, opt2)
    opt2.load_state_dict({k[10:]: v for k, v in saved.items() if k.startswith("optimizer.")})
    second.load_state_dict({k[10:]: v for k, v in saved.items() if k.startswith("scheduler.")})
    assert second.get_last_lr() == part[-1:] and opt2.lr == part[-1]
    assert part[:-1] + _lrs(second, 18) == straight


def test_load_state_dict_refuses_another_scheduler():
    step = S.StepLR(_optimizer(), step_size=3)
    with pytest.raises(ValueError, match="StepLR.load_state_dict: expected keys"):
        step.load_state_dict(S.CosineAnnealingLR(_optimizer(), T_max=5).state_dict())


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda o: S.StepLR(o, step_size=0), ValueError, "step_size must be a positive integer"),
        (lambda o: S.MultiStepLR(o, milestones=[5, 2]), ValueError,
         "milestones must be increasing"),
        (lambda o: S.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be > 0"),
        (lambda o: S.LinearLR(o, start_factor=0), ValueError, "start_factor must be in"),
        (lambda o: S.LinearLR(o, total_iters=0), ValueError, "total_iters must be a positive"),
        (lambda o: S.LambdaLR(o, 0.5), TypeError, "lr_lambda must be callable"),
        (lambda o: S.StepLR("sgd", step_size=1), TypeError,
         "expected a tinyresnet.optim optimizer"),
        (lambda o: S.SequentialLR(o, [S.StepLR(o, 2)], milestones=[3]), ValueError,
         "expected 0 milestone"),
        (lambda o: S.SequentialLR(o, [S.StepLR(_optimizer(), 2)], milestones=[]), ValueError,
         "same optimizer"),
    ],
)
def test_bad_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make(_optimizer())
