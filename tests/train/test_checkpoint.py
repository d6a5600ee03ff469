"""Checkpoints: round trip without pickle, atomic save under a simulated crash, RNG restore, and
refusal of a checkpoint of another architecture or of a file that is not a checkpoint."""
import json
import os

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import nn, optim
from tinyresnet.train import (
    CheckpointError, architecture_fingerprint, load_checkpoint, read_checkpoint, save_checkpoint,
)


def tiny(width=4, classes=3):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes),
    )


def trained(seed=0, steps=2, width=4):
    """A tiny model, its SGD and cosine schedule after a few steps (so every state is non-trivial)."""
    tr.manual_seed(seed)
    model = tiny(width)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.CosineAnnealingLR(opt, T_max=10)
    loss_fn = nn.CrossEntropyLoss()
    x = tr.get_rng().standard_normal((8, 1, 5, 5)).astype(np.float32)
    y = np.arange(8) % 3
    for _ in range(steps):
        loss_fn(model(x), y)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
        sched.step()
    return model, opt, sched


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        np.testing.assert_array_equal(np.asarray(sa[key]), np.asarray(sb[key]), err_msg=key)


def test_round_trip_restores_model_optimizer_scheduler(tmp_path):
    model, opt, sched = trained()
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, opt, sched, epoch=3, step=1, model_name="tiny",
                    model_kwargs={"width": 4}, extra={"classes": ["a", "b", "c"]})

    model2, opt2, sched2 = trained(seed=1, steps=1)
    ckpt = load_checkpoint(path, model2, opt2, sched2)
    assert_same_state(model, model2)
    assert (ckpt.epoch, ckpt.step, ckpt.model_name, ckpt.model_kwargs) == (3, 1, "tiny", {"width": 4})
    assert ckpt.extra["classes"] == ["a", "b", "c"]
    assert sched2.last_epoch == sched.last_epoch and opt2.lr == opt.lr
    s1, s2 = optim.flatten_state_dict(opt.state_dict()), optim.flatten_state_dict(opt2.state_dict())
    assert sorted(s1) == sorted(s2)
    for key in s1:
        np.testing.assert_array_equal(np.asarray(s1[key]), np.asarray(s2[key]), err_msg=key)


def test_checkpoint_with_the_older_flat_optimizer_state_still_loads(tmp_path):
    """Checkpoints written before the optimizer state took PyTorch's layout held it flat."""
    model, opt, sched = trained()
    nested = opt.state_dict()
    opt.state_dict = lambda: optim.flatten_state_dict(nested)  # what the older code returned
    save_checkpoint(tmp_path / "old.npz", model, opt, sched)
    model2, opt2, sched2 = trained(seed=1, steps=1)
    load_checkpoint(tmp_path / "old.npz", model2, opt2, sched2)
    s1, s2 = optim.flatten_state_dict(nested), optim.flatten_state_dict(opt2.state_dict())
    assert sorted(s1) == sorted(s2)
    for key in s1:
        np.testing.assert_array_equal(np.asarray(s1[key]), np.asarray(s2[key]), err_msg=key)


def test_file_is_a_plain_npz_readable_without_pickle(tmp_path):
    model, opt, sched = trained()
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, opt, sched, model_name="tiny")
    with np.load(path, allow_pickle=False) as archive:
        files = set(archive.files)
        assert {f"model/{k}" for k in model.state_dict()} <= files
        assert {"optimizer/__json__", "scheduler/__json__", "rng/__json__", "meta/__json__"} <= files
        assert "optimizer/state/0/momentum_buffer" in files
        meta = json.loads(str(archive["meta/__json__"]))
        assert archive["meta/__json__"].dtype.kind == "U"
    assert meta["architecture"] == architecture_fingerprint(model)


def test_rng_state_is_restored(tmp_path):
    model, _, _ = trained()
    save_checkpoint(tmp_path / "ck.npz", model)
    expected = tr.get_rng().standard_normal(5)
    tr.manual_seed(123)
    load_checkpoint(tmp_path / "ck.npz", restore_rng=True)
    np.testing.assert_array_equal(tr.get_rng().standard_normal(5), expected)


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    model, opt, sched = trained(steps=1)
    save_checkpoint(path, model, opt, sched, epoch=1)
    saved = {k: np.array(v) for k, v in model.state_dict().items()}

    model2, opt2, sched2 = trained(steps=3)

    def crash(src, dst):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, model2, opt2, sched2, epoch=2)
    monkeypatch.undo()

    fresh = tiny()
    ckpt = load_checkpoint(path, fresh)
    assert ckpt.epoch == 1
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)
    assert os.listdir(tmp_path) == ["last.npz"], "the temporary file was left behind"


def test_interrupt_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """Ctrl-C while the archive is being written (before the rename) is no worse."""
    path = tmp_path / "last.npz"
    model, opt, sched = trained(steps=1)
    save_checkpoint(path, model, opt, sched, epoch=1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, sched, epoch=2)
    monkeypatch.undo()
    assert read_checkpoint(path).epoch == 1
    assert os.listdir(tmp_path) == ["last.npz"]


def test_other_architecture_is_refused_naming_both(tmp_path):
    model, _, _ = trained(width=4)
    save_checkpoint(tmp_path / "ck.npz", model, model_name="tiny", model_kwargs={"width": 4})
    other = tiny(width=6)
    before = {k: np.array(v) for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "ck.npz", other, model_name="tiny", model_kwargs={"width": 6})
    message = str(info.value)
    assert "tiny(width=4)" in message and "tiny(width=6)" in message
    assert "'0.weight' (6, 1, 3, 3)" in message and "(4, 1, 3, 3)" in message
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_same_layout_other_dtype_is_the_same_architecture():
    assert architecture_fingerprint(tiny()) == architecture_fingerprint(tiny().double())
    assert architecture_fingerprint(tiny(4)) != architecture_fingerprint(tiny(5))


@pytest.mark.parametrize("content, match", [
    (b"this is not a zip archive", "not a readable checkpoint"),
    (None, "does not exist"),
])
def test_garbage_is_refused(tmp_path, content, match):
    path = tmp_path / "ck.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)


def test_foreign_npz_and_pickled_arrays_are_refused(tmp_path):
    np.savez(tmp_path / "weights.npz", w=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a tinyresnet checkpoint"):
        read_checkpoint(tmp_path / "weights.npz")
    # An object array needs pickle to load; allow_pickle=False refuses it.
    np.savez(tmp_path / "evil.npz", **{"meta/__json__": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "evil.npz")
