"""backend: NumPy by default, CuPy only on request, and import tinyresnet never needs CuPy."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinyresnet as tr
from tinyresnet import backend

REPO_ROOT = Path(tr.__file__).resolve().parent.parent


class FakeCupyArray:
    """Looks like a CuPy array to get_array_module (which goes by the type's module)."""

    __module__ = "cupy._core.core"


def test_get_array_module_on_numpy():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.get_array_module(np.zeros(2), None, np.ones(3, dtype=np.float32)) is np
    assert backend.get_array_module() is np
    assert tr.get_array_module is backend.get_array_module


def test_get_array_module_refuses_mixed_devices():
    with pytest.raises(TypeError, match="mix of NumPy and CuPy arrays; move them to one device"):
        backend.get_array_module(np.zeros(2), FakeCupyArray())


def test_to_device_cpu_and_to_numpy(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = backend.to_device(x, "cpu")
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(backend.to_numpy([1.0, 2.0]), [1.0, 2.0])
    assert backend.device_of(x) == "cpu"


def test_to_device_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'tpu'; expected 'cpu' or 'cuda'"):
        backend.to_device(np.zeros(1), "tpu")


def test_to_cuda_without_cupy_names_the_extras():
    if backend.cupy_available():
        pytest.skip("CuPy and a GPU are present: moving to 'cuda' works")
    for device in ("cuda", "cuda:0"):
        with pytest.raises(RuntimeError, match=r"tinyresnet\[cuda12\]'.*tinyresnet\[cuda13\]'"):
            backend.to_device(np.zeros(2), device)
    with pytest.raises(RuntimeError, match="needs CuPy"):
        tr.nn.Linear(2, 2).to("cuda")


def test_mixed_numpy_and_cupy_arrays_are_refused_by_an_op():
    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    x = np.ones((1, 1, 3, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="mix of NumPy and CuPy"):
        tr.functional.conv2d_forward(x, backend.to_device(np.ones((1, 1, 3, 3), np.float32), "cuda"))


def test_default_dtype():
    assert backend.default_dtype() is np.float32
    with pytest.raises(ValueError, match="default dtype must be float32 or float64, got <class 'numpy.int32'>"):
        backend.set_default_dtype(np.int32)
    assert backend.default_dtype() is np.float32


def _run_python(code, extra_path=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), str(REPO_ROOT)])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_tinyresnet_does_not_import_cupy():
    result = _run_python("""
        import sys
        import numpy as np
        import tinyresnet as tr
        from tinyresnet import nn
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
        model(np.ones((1, 1, 4, 4), dtype=np.float32))
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'cupy'))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tinyresnet_works_where_cupy_is_broken(tmp_path):
    """A CuPy that fails to import (a wheel for the wrong CUDA) must not break the CPU path."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise ImportError('broken cupy for this test')\n")
    result = _run_python("""
        import numpy as np
        import tinyresnet as tr
        y = tr.nn.Linear(2, 1)(np.ones((1, 2), dtype=np.float32))
        assert y.dtype == np.float32
        assert not tr.backend.cupy_available()
        try:
            tr.to_device(y, 'cuda')
        except RuntimeError as e:
            print(e)
    """, extra_path=[tmp_path])
    assert result.returncode == 0, result.stderr
    assert "pip install 'tinyresnet[cuda12]'" in result.stdout
