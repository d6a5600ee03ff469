"""Course assignments with a diagnosing autograder.

The library is the reference solution: the lines students write are fenced by
``# BEGIN SOLUTION <part>`` / ``# END SOLUTION`` inside its modules.  From ``assignments/<id>/``
(configuration, notebook, public and hidden tests) this package builds a student release (the
regions replaced by stubs) and an instructor bundle, checks a student's work part by part, and
grades folders of submissions, each in its own subprocess with time limits, with feedback that
diagnoses the bug (missing factor, opposite sign, kernel not flipped, shortcut gradient not
added, ...) without showing hidden tests.

    python -m tinyresnet.assign build A1
    python -m tinyresnet.assign check A1             # in the student folder
    python -m tinyresnet.assign grade A1 submissions/

The submodules are imported on use: the grading worker loads ``harness`` and ``diagnosis`` alone.
"""
__all__ = ["build", "check", "grade", "load_assignment", "main"]


def build(*args, **kwargs):
    """See ``release.build``."""
    from .release import build as _build

    return _build(*args, **kwargs)


def check(*args, **kwargs):
    """See ``checker.check``."""
    from .checker import check as _check

    return _check(*args, **kwargs)


def grade(*args, **kwargs):
    """See ``grader.grade``."""
    from .grader import grade as _grade

    return _grade(*args, **kwargs)


def load_assignment(*args, **kwargs):
    """See ``config.load_assignment``."""
    from .config import load_assignment as _load

    return _load(*args, **kwargs)


def main(argv=None):
    """The command line (``python -m tinyresnet.assign``, ``tinyresnet assign|check|grade``)."""
    from .cli import main as _main

    return _main(argv)
