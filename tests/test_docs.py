"""The documentation site builds in strict mode: no broken link, no missing API reference.

Runs the one command of the docs, ``mkdocs build --strict``, into a temporary folder.  Skipped
where the docs toolchain (mkdocs, mkdocstrings[python], pymdown-extensions: the ``dev`` extra) is
not installed.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_strict(tmp_path):
    for module in ("mkdocs", "mkdocstrings_handlers.python", "pymdownx.arithmatex"):
        pytest.importorskip(module)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    for page in ["index.html", "math/conv/index.html", "api/functional/index.html"]:
        assert (tmp_path / "site" / page).is_file(), f"{page} was not built"
    # the API reference is generated from the docstrings, with the math handed to MathJax
    api = (tmp_path / "site" / "api" / "functional" / "index.html").read_text()
    assert 'id="tinyresnet.functional.conv.conv2d_backward"' in api
    assert 'class="arithmatex"' in api
