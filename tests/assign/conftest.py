"""Shared fixtures of the assignment tests: each assignment built once per session, and helpers
that make submissions from the reference solution.

A3 and A4 are built and graded in a reduced configuration (no ImageNet-size networks, one epoch of
training on the digits against a low bar) so the default run stays quick; the full A3 grade and
A4's training on CIFAR-10 are slow tests.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyresnet.assign.release import build, package_root

REDUCED = {
    "A1": {},
    "A2": {},
    "A3": {
        "parts.make_layer.params.imagenet": False,
        "parts.gradcheck.params.imagenet": False,
        "parts.train.params.epochs": 1,
        "parts.train.params.min_accuracy": 0.3,
    },
    "A4": {
        "parts.train.params.dataset": "digits",
        "parts.train.params.epochs": 1,
        "parts.train.params.digits_min_accuracy": 0.3,
    },
}


@pytest.fixture(scope="session")
def builds(tmp_path_factory):
    """{assignment id: Build}, built lazily, once per session, from a snapshot of the library
    (others may edit the working tree meanwhile; the release is compared with the snapshot)."""
    root = tmp_path_factory.mktemp("assign-build")
    shutil.copytree(package_root() / "tinyresnet", root / "library" / "tinyresnet",
                    ignore=shutil.ignore_patterns("__pycache__"))

    class Builds(dict):
        def __missing__(self, name):
            self[name] = build(name, root, overrides=REDUCED[name], source=root / "library")
            return self[name]

    return Builds()


def solution_submission(build_, target):
    """A submission holding the reference versions of every file a student may hand in."""
    shutil.copytree(build_.instructor / "solution", target)
    return Path(target)


def untouched_submission(build_, target):
    """The student release exactly as handed out."""
    shutil.copytree(build_.student, target)
    return Path(target)


def mutate(submission, relative, code):
    """Append code to one file of a submission (it rebinds a function to a wrong version)."""
    path = Path(submission) / relative
    path.write_text(path.read_text(encoding="utf-8") + "\n" + code, encoding="utf-8")


def completed_release(build_, target):
    """A student release with the reference solution typed in."""
    folder = untouched_submission(build_, target)
    for rel in build_.assignment.files:
        shutil.copyfile(build_.instructor / "solution" / rel, folder / rel)
    return folder


def run_module(args, cwd, code=None):
    """``python -m tinyresnet.assign ARGS`` (or ``python -c CODE``) in ``cwd``, as a student runs
    it: the checkout is importable, but a package in ``cwd`` (a release) comes first."""
    env = dict(os.environ, PYTHONPATH=str(package_root()))
    command = ["-c", code] if code is not None else ["-m", "tinyresnet.assign"] + list(args)
    return subprocess.run([sys.executable] + command, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
