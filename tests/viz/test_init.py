"""The viz package: every public name is exported, and importing it draws in no matplotlib."""
import subprocess
import sys

import tinyresnet as tr


def test_public_names_are_exported():
    for name in tr.viz.__all__:
        assert getattr(tr.viz, name) is not None, name
    plots = [n for n in tr.viz.__all__ if n.startswith("plot_")]
    assert len(plots) == 8


def test_importing_the_package_imports_no_matplotlib():
    code = "import sys, tinyresnet as tr; tr.viz.gradient_profile; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
