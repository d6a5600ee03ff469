"""fit and evaluate: bit-for-bit resume (at an epoch boundary and after Ctrl-C mid-epoch), the
SIGINT path, history and curves, scheduler stepping, and errors in the training data."""
import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

import tinyresnet as tr
from tinyresnet import nn, optim
from tinyresnet.data import ArrayDataset, DataLoader
from tinyresnet.data import transforms as T
from tinyresnet.train import CheckpointError, accuracy, evaluate, fit, read_checkpoint

N, CLASSES, BATCH = 24, 3, 4


def dataset(n=N, classes=CLASSES, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 5, 5)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x[np.arange(n), 0, 2, 2] += 2 * y  # something to learn
    return x, y


def setup(seed=0, width=4, lr=0.1):
    """A small net with batch norm and dropout (which draws from the package RNG), a loader with
    random crops and shuffling, SGD with momentum and a cosine schedule."""
    tr.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, CLASSES),
    )
    x, y = dataset()
    train = ArrayDataset(x, y, transform=T.RandomCrop(5, padding=1))
    val = ArrayDataset(x[:12], y[:12])
    train_loader = DataLoader(train, batch_size=BATCH, shuffle=True, drop_last=True, seed=3)
    val_loader = DataLoader(val, batch_size=5)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    sched = optim.CosineAnnealingLR(opt, T_max=20)
    return model, train_loader, val_loader, opt, sched


def run(out, epochs, seed=0, resume=False, **kwargs):
    model, train_loader, val_loader, opt, sched = setup(seed)
    result = fit(model, train_loader, val_loader, opt, sched, epochs=epochs, out_dir=out,
                 resume=resume, progress=False, scheduler_interval="step", **kwargs)
    return model, opt, result


def assert_bit_identical(a, b):
    (ma, oa), (mb, ob) = a, b
    for key, value in ma.state_dict().items():
        np.testing.assert_array_equal(value, mb.state_dict()[key], err_msg=key, strict=True)
    sa, sb = optim.flatten_state_dict(oa.state_dict()), optim.flatten_state_dict(ob.state_dict())
    assert sorted(sa) == sorted(sb)
    for key in sa:
        np.testing.assert_array_equal(np.asarray(sa[key]), np.asarray(sb[key]), err_msg=key)


def untimed(history):
    """The records without their wall times, which no two runs share."""
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    model, opt, result = run(out, epochs=3)
    return model, opt, result


def test_resume_at_epoch_boundary_is_bit_identical(tmp_path, uninterrupted):
    run(tmp_path, epochs=2)
    # Another seed for the fresh objects: everything must come from the checkpoint.
    model, opt, result = run(tmp_path, epochs=3, seed=99, resume=True)
    assert_bit_identical(uninterrupted[:2], (model, opt))
    assert untimed(result.history) == untimed(uninterrupted[2].history)
    assert result.best_acc1 == uninterrupted[2].best_acc1


def test_ctrl_c_mid_epoch_saves_and_resume_is_bit_identical(tmp_path, uninterrupted):
    def interrupt(epoch, step, logs):
        if (epoch, step) == (1, 2):
            raise KeyboardInterrupt

    _, _, result = run(tmp_path, epochs=3, on_batch=interrupt)
    assert result.interrupted and result.epochs_done == 1
    ckpt = read_checkpoint(tmp_path / "last.npz")
    assert (ckpt.epoch, ckpt.step) == (1, 3)
    assert len(result.history) == 1
    model, opt, result = run(tmp_path, epochs=3, seed=99, resume=True)
    assert not result.interrupted
    assert_bit_identical(uninterrupted[:2], (model, opt))
    assert untimed(result.history) == untimed(uninterrupted[2].history)


def test_sigint_stops_after_the_current_batch(tmp_path):
    def press_ctrl_c(epoch, step, logs):
        if (epoch, step) == (0, 1):
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    _, _, result = run(tmp_path, epochs=2, on_batch=press_ctrl_c)
    assert result.interrupted
    assert (read_checkpoint(tmp_path / "last.npz").step) == 2
    assert signal.getsignal(signal.SIGINT) is before


def test_second_sigint_stops_at_once_without_saving(tmp_path):
    def press_ctrl_c_twice(epoch, step, logs):
        if (epoch, step) == (1, 1):
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    _, _, result = run(tmp_path, epochs=2, on_batch=press_ctrl_c_twice)
    assert result.interrupted
    ckpt = read_checkpoint(tmp_path / "last.npz")
    assert (ckpt.epoch, ckpt.step) == (1, 0), "the end-of-epoch checkpoint must be kept"


def test_history_csv_and_png_are_written(tmp_path):
    run(tmp_path, epochs=2)
    with open(tmp_path / "history.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [0, 1]
    assert {"lr", "train_loss", "train_acc1", "val_loss", "val_acc1", "val_acc5"} <= set(records[0])
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,lr,train_loss,train_acc1,val_loss,val_acc1,val_acc5")
    with Image.open(tmp_path / "curves.png") as png:
        assert png.format == "PNG" and png.size == (1000, 400)
    assert {"last.npz", "best.npz"} <= set(os.listdir(tmp_path))


def test_scheduler_interval_epoch_and_step(tmp_path):
    steps = N // BATCH
    for interval, expected in (("epoch", [0.1, 0.05]),
                               ("step", [0.1 * 0.5 ** (steps - 1), 0.1 * 0.5 ** (2 * steps - 1)])):
        model, train_loader, _, opt, _ = setup()
        sched = optim.StepLR(opt, step_size=1, gamma=0.5)
        result = fit(model, train_loader, None, opt, sched, epochs=2, out_dir=tmp_path / interval,
                     progress=False, scheduler_interval=interval, plot=False)
        assert [r["lr"] for r in result.history] == pytest.approx(expected)


def test_reduce_on_plateau_is_stepped_with_the_validation_loss(tmp_path):
    model, train_loader, val_loader, opt, _ = setup()
    # only the first epoch improves (on inf); each one after must gain 10 to count
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0,
                                    threshold_mode="abs")
    result = fit(model, train_loader, val_loader, opt, sched, epochs=3, out_dir=tmp_path,
                 progress=False, plot=False)
    assert [r["lr"] for r in result.history] == pytest.approx([0.1, 0.1, 0.05])
    assert sched.best == pytest.approx(result.history[0]["val_loss"])
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches an epoch's metric"):
        fit(model, train_loader, val_loader, opt, sched, epochs=1, out_dir=tmp_path / "s",
            progress=False, scheduler_interval="step")


def test_evaluate_matches_direct_computation():
    model, _, _, _, _ = setup()
    x, y = dataset()
    loader = DataLoader(ArrayDataset(x, y), batch_size=5)
    model.train()
    result = evaluate(model, loader)
    assert model.training
    model.eval()
    with nn.no_grad():
        logits = model(x)
    loss = nn.CrossEntropyLoss()(logits, y)
    assert result["count"] == N
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert [result["acc1"], result["acc5"]] == pytest.approx(accuracy(logits, y, (1, 5)))


def test_resume_without_checkpoint_and_into_another_model(tmp_path):
    model, train_loader, val_loader, opt, sched = setup()
    with pytest.raises(CheckpointError, match="does not exist"):
        fit(model, train_loader, val_loader, opt, epochs=1, out_dir=tmp_path, resume=True,
            progress=False)
    fit(model, train_loader, None, opt, epochs=1, out_dir=tmp_path, progress=False, plot=False,
        model_name="tiny", model_kwargs={"width": 4})
    tr.manual_seed(0)
    wider = nn.Sequential(nn.Conv2d(1, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(6, CLASSES))
    with pytest.raises(CheckpointError, match=r"tiny\(width=4\).*tiny\(width=6\)"):
        fit(wider, train_loader, None, optim.SGD(wider.parameters(), lr=0.1), epochs=2,
            out_dir=tmp_path, resume=True, progress=False, model_name="tiny",
            model_kwargs={"width": 6})


def test_labels_out_of_range_are_named(tmp_path):
    model, _, _, opt, _ = setup()
    x, _ = dataset()
    loader = DataLoader(ArrayDataset(x, np.arange(N) % 5), batch_size=BATCH)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] for 3 classes"):
        fit(model, loader, None, opt, epochs=1, out_dir=tmp_path, progress=False)


def test_diverging_loss_stops_with_a_clear_error(tmp_path):
    model, _, _, opt, _ = setup()
    x, y = dataset()
    x[0] = np.nan
    loader = DataLoader(ArrayDataset(x, y), batch_size=BATCH)
    with pytest.raises(FloatingPointError, match="the loss became nan at epoch 1, batch 0"):
        fit(model, loader, None, opt, epochs=1, out_dir=tmp_path, progress=False)


def test_empty_loader_is_refused(tmp_path):
    model, _, _, opt, _ = setup()
    with pytest.raises(ValueError, match="yields no batches"):
        fit(model, [], None, opt, epochs=1, out_dir=tmp_path, progress=False)


def test_losses_are_read_once_per_logging_interval_with_the_same_numbers(tmp_path, monkeypatch):
    import tinyresnet.train.trainer as trainer

    reads = []
    real = trainer.to_numpy
    monkeypatch.setattr(trainer, "to_numpy", lambda a: reads.append(np.shape(a)) or real(a))
    _, _, every_step = run(tmp_path / "a", epochs=2, log_every=1)
    assert len(reads) == 2 * (N // BATCH)
    reads.clear()
    _, _, grouped = run(tmp_path / "b", epochs=2, log_every=4)
    # 6 steps an epoch: read after steps 4 and 6 (the epoch's end), each read one transfer.
    assert reads == [(8,), (4,)] * 2
    assert untimed(grouped.history) == untimed(every_step.history)


def test_max_steps_stops_in_the_middle_of_an_epoch(tmp_path):
    _, opt, result = run(tmp_path, epochs=5, max_steps=9)
    assert result.epochs_done == 2 and [r["time_steps"] for r in result.history] == [6, 3]
    assert read_checkpoint(tmp_path / "last.npz").epoch == 2


def test_epoch_records_time_the_steps_and_the_wait_for_data(tmp_path):
    _, _, result = run(tmp_path, epochs=1)
    record = result.history[0]
    assert record["time_steps"] == N // BATCH
    assert 0 <= record["time_data_s"] <= record["time_train_s"]


def test_training_skips_the_data_gradient_and_gives_the_layer_back(tmp_path):
    """fit runs the first convolution without dL/d(images) (nn.skip_input_grad), as PyTorch
    computes none, and leaves the layer as it found it."""
    model, train_loader, val_loader, opt, sched = setup()
    seen = []
    fit(model, train_loader, val_loader, opt, sched, epochs=1, out_dir=tmp_path, progress=False,
        on_batch=lambda *args: seen.append(model[0].input_grad))
    assert seen and not any(seen)
    assert model[0].input_grad is True
