"""The tinyresnet command: --help everywhere, train/eval/predict end to end, summary, gradcheck,
and one clear line on stderr (exit status 2) for each error a user can make."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyresnet import models, nn
from tinyresnet.cli import main
from tinyresnet.train import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ["train", "eval", "predict", "summary", "gradcheck"]


def make_image_folder(root, classes=("cat", "dog"), per_class=4, size=(12, 10)):
    """Class folders of small RGB PNGs, each class with its own dominant colour."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (*size, 3), dtype=np.uint8)
            pixels[..., c % 3] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


# ---- help -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [None] + SUBCOMMANDS)
def test_help(capsys, command):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tinyresnet")
    expected = {None: "COMMAND", "train": "ship with tinyresnet", "eval": "top-1 and top-5",
                "predict": "top classes", "summary": "multiply-adds",
                "gradcheck": "finite differences"}[command]
    assert expected in out
    assert "example" in out or command is None


# ---- train, eval, predict ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """A smoke run on the digits (two batches of 8 per epoch, two epochs)."""
    out = tmp_path_factory.mktemp("digits")
    code = main(["train", "--smoke", "--epochs", "1", "--batch-size", "8", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    return out


def test_train_writes_checkpoints_history_and_curves(trained_digits):
    files = {p.name for p in trained_digits.iterdir()}
    assert {"last.npz", "best.npz", "history.jsonl", "history.csv", "curves.png"} <= files
    ckpt = read_checkpoint(trained_digits / "last.npz")
    assert ckpt.model_name == "cifar_resnet20"
    assert ckpt.model_kwargs == {"num_classes": 10, "in_channels": 1}
    assert ckpt.extra["data"]["dataset"] == "digits" and ckpt.epoch == 1


def test_train_resume_continues_the_run(trained_digits, capsys):
    code, out, err = run_cli(capsys, "train", "--smoke", "--epochs", "2", "--batch-size", "8",
                             "--out", trained_digits, "--no-progress", "--resume")
    assert code == 0, err
    assert "resuming from" in err and "after 2 epochs" in out
    assert read_checkpoint(trained_digits / "last.npz").epoch == 2


def test_eval_reports_accuracy(trained_digits, capsys):
    code, out, err = run_cli(capsys, "eval", trained_digits / "last.npz", "--no-progress")
    assert code == 0, err
    assert out.startswith("digits test (450 images): top-1 ")
    assert "cifar_resnet(" not in out and "cifar_resnet20(num_classes=10, in_channels=1)" in out


def test_predict_prints_top5_with_class_names(trained_digits, tmp_path, capsys):
    paths = []
    for name, value in (("light.png", 255), ("dark.png", 0)):
        pixels = np.full((32, 32), value, dtype=np.uint8)
        pixels[4:28, 14:18] = 255 - value  # a "1", dark on light and light on dark
        Image.fromarray(pixels).save(tmp_path / name)
        paths.append(tmp_path / name)
    code, out, err = run_cli(capsys, "predict", "--checkpoint", trained_digits / "best.npz", *paths)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == str(paths[0]) and lines[6] == str(paths[1])
    ranks = [line.split() for line in lines[1:6]]
    assert [r[0] for r in ranks] == ["1.", "2.", "3.", "4.", "5."]
    assert {r[1] for r in ranks} <= {str(d) for d in range(10)}
    percents = [float(r[2].rstrip("%")) for r in ranks]
    assert percents == sorted(percents, reverse=True) and 0 < sum(percents) <= 100.01
    # Light-on-dark and dark-on-light versions of the same digit are read the same way.
    assert lines[1:6] == lines[7:12]


def test_train_on_an_image_folder_then_eval_another_with_more_classes(tmp_path, capsys):
    folder = make_image_folder(tmp_path / "photos")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", "imagefolder", "--data", folder,
                           "--image-size", "8", "--epochs", "1", "--batch-size", "4",
                           "--recipe", "imagenet", "--out", out, "--no-progress")
    assert code == 0, err
    assert read_checkpoint(out / "last.npz").extra["data"]["classes"] == ["cat", "dog"]
    three = make_image_folder(tmp_path / "three", classes=("a", "b", "c"))
    code, _, err = run_cli(capsys, "eval", out / "last.npz", "--data", three)
    assert_one_line_error(code, err, "labels out of range", "3 classes", "predicts 2")


def test_threads_auto_runs_the_digits_on_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from tinyresnet import functional as F
    from tinyresnet.cli import _cpu_threads, build_parser

    args = build_parser().parse_args(["train"])
    assert args.threads == "auto"

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before, ops_before = blas_threads(), F.get_num_threads()
    with _cpu_threads(args, "digits"):
        assert set(blas_threads()) == {1} and F.get_num_threads() == 1
    with _cpu_threads(args, "cifar10"):
        assert blas_threads() == before and F.get_num_threads() == ops_before
    assert blas_threads() == before and F.get_num_threads() == ops_before
    with _cpu_threads(args, "cifar10", ranks=2):  # two ranks on this machine share its cores
        assert F.get_num_threads() == max(1, ops_before // 2)
    assert F.get_num_threads() == ops_before
    args = build_parser().parse_args(["train", "--threads", "3"])
    with _cpu_threads(args, "cifar10"):
        assert set(blas_threads()) == {3} and F.get_num_threads() == 3
    assert blas_threads() == before and F.get_num_threads() == ops_before
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--threads", "0"])


# ---- summary and gradcheck --------------------------------------------------------------------
def test_summary_prints_the_models_table(capsys):
    code, out, _ = run_cli(capsys, "summary", "cifar_resnet20", "--in-channels", "1",
                           "--image-size", "8")
    assert code == 0
    expected = models.summary(models.cifar_resnet20(in_channels=1), (1, 8, 8))
    assert out.strip() == str(expected)


def test_gradcheck_passes_on_a_correct_model(capsys):
    code, out, _ = run_cli(capsys, "gradcheck", "cifar_resnet20")
    assert code == 0
    assert "gradient check passed" in out and "float64" in out


def test_gradcheck_fails_with_status_1_on_a_wrong_backward(capsys, monkeypatch):
    monkeypatch.setattr(nn.ReLU, "backward", lambda self, dy: 0.5 * dy)
    code, out, _ = run_cli(capsys, "gradcheck", "cifar_resnet20", "--image-size", "8")
    assert code == 1
    assert "gradient check FAILED" in out and "WRONG" in out


# ---- errors: one line on stderr, exit status 2 ------------------------------------------------
def test_missing_data_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--dataset", "imagefolder", "--data",
                           tmp_path / "nowhere")
    assert_one_line_error(code, err, "tinyresnet train: error:", "nowhere", "does not exist")


def test_cifar_files_missing(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--dataset", "cifar10", "--data", tmp_path)
    assert_one_line_error(code, err, "no CIFAR-10 files found", "Download")


def test_empty_class_folder(capsys, tmp_path):
    folder = make_image_folder(tmp_path / "photos")
    (folder / "empty").mkdir()
    code, _, err = run_cli(capsys, "train", "--dataset", "imagefolder", "--data", folder)
    assert_one_line_error(code, err, "empty", "holds no image files")


@pytest.mark.parametrize("argv", [["train", "--model", "resnet7"], ["summary", "resnet7"],
                                  ["gradcheck", "resnet7"]])
def test_unknown_model(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "unknown model 'resnet7'", "cifar_resnet20")


def test_bad_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint at all")
    code, _, err = run_cli(capsys, "eval", bad)
    assert_one_line_error(code, err, "tinyresnet eval: error:", "not a readable checkpoint")
    code, _, err = run_cli(capsys, "predict", "--checkpoint", tmp_path / "missing.npz", bad)
    assert_one_line_error(code, err, "missing.npz' does not exist")


def test_batch_size_larger_than_dataset(capsys):
    code, _, err = run_cli(capsys, "train", "--batch-size", "5000")
    assert_one_line_error(code, err, "--batch-size 5000 is larger than the training set (1347")


def test_resume_without_checkpoint(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--resume", "--out", tmp_path)
    assert_one_line_error(code, err, "nothing to resume")


def test_unreadable_image(capsys, tmp_path, trained_digits):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG truncated")
    code, _, err = run_cli(capsys, "predict", "--checkpoint", trained_digits / "last.npz", broken)
    assert_one_line_error(code, err, "cannot read image", "broken.png")


def test_console_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "tinyresnet", "summary", "resnet7"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unknown model 'resnet7'" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_default_train_reaches_97_percent_on_the_digits(tmp_path, capsys):
    """The README's figure: `tinyresnet train` with no options (a few minutes on 2 cores)."""
    code, out, err = run_cli(capsys, "train", "--out", tmp_path, "--no-progress")
    assert code == 0, err
    final = read_checkpoint(tmp_path / "last.npz")
    assert final.epoch == 20
    with open(tmp_path / "history.jsonl") as f:
        last = [line for line in f if line.strip()][-1]
    assert json.loads(last)["val_acc1"] >= 97.0, out


# ---- CIFAR: recipes, the image cache, the paper's schedules -----------------------------------
SLICE = ROOT / "tests" / "data" / "cifar10_slice"


def test_data_prepare_builds_then_reuses_the_cache(capsys, tmp_path):
    cache = tmp_path / "cache"
    code, out, err = run_cli(capsys, "data", "prepare", SLICE, "--cache-dir", cache,
                             "--no-progress")
    assert code == 0, err
    assert "200 images of 32x32 decoded into the cache" in out
    code, out, _ = run_cli(capsys, "data", "prepare", SLICE, "--cache-dir", cache)
    assert code == 0 and "already in the cache" in out
    assert len(list(cache.glob("cifar10_slice-*.npz"))) == 1
    code, _, err = run_cli(capsys, "data", "prepare", tmp_path / "nowhere")
    assert_one_line_error(code, err, "is not a folder")


def test_cifar_slice_trains_with_the_cifar_recipe_and_evaluates_as_trained(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "--dataset", "imagefolder", "--data", SLICE,
                                "--schedule", "short", "--epochs", "1", "--batch-size", "20",
                                "--smoke", "--out", out, "--no-progress")
    assert code == 0, err
    assert "(cifar recipe)" in err
    ckpt = read_checkpoint(out / "last.npz")
    spec = ckpt.extra["data"]
    assert (spec["recipe"], spec["image_size"], spec["val_fraction"]) == ("cifar", 32, 0.1)
    recorded = float(stdout.split("top-1 ")[1].split("%")[0])
    code, stdout, err = run_cli(capsys, "eval", out / "last.npz", "--no-progress")
    assert code == 0, err
    assert "(20 images)" in stdout and f"top-1 {recorded:.2f}%" in stdout
    code, stdout, err = run_cli(capsys, "predict", "--checkpoint", out / "last.npz",
                                sorted((SLICE / "ship").iterdir())[0], "--topk", "3")
    assert code == 0, err
    assert len(stdout.strip().splitlines()) == 4


def test_schedules_paper_and_short_set_the_papers_optimiser():
    from tinyresnet import optim
    from tinyresnet.cli import _make_scheduler, _resolve_recipe_defaults, build_parser

    for schedule in ("paper", "short"):
        args = build_parser().parse_args(["train", "--schedule", schedule])
        _resolve_recipe_defaults(args)
        assert (args.batch_size, args.lr, args.momentum, args.weight_decay) == (128, 0.1, 0.9,
                                                                                 1e-4)
    assert args.epochs == 3
    args = build_parser().parse_args(["train"])
    _resolve_recipe_defaults(args)
    assert (args.batch_size, args.weight_decay, args.epochs) == (64, 5e-4, 20)
    args = build_parser().parse_args(["train", "--schedule", "paper", "--batch-size", "64"])
    _resolve_recipe_defaults(args)
    assert args.batch_size == 64
    # The paper's milestones are iterations: /10 at 32k and 48k, whatever the epoch length.
    args.epochs = 183
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1)
    sched = _make_scheduler(args, opt, steps_per_epoch=351)
    assert list(sched.milestones) == [32_000, 48_000]


def test_paper_schedule_is_counted_in_iterations_not_epochs(capsys):
    code, _, err = run_cli(capsys, "train", "--schedule", "paper", "--epochs", "3")
    assert_one_line_error(code, err, "64,000 iterations", "--schedule short")


def test_train_sync_bn_needs_distributed(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--sync-bn", "--out", tmp_path, "--no-progress")
    assert code == 2
    assert "--sync-bn synchronizes batch norm across processes; it needs --distributed" in err
