"""Backend resolution: names, namespaces, devices, and the errors users meet."""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest
from conftest import use_strictest_array_api_strict

from xpnet import SUPPORTED_BACKENDS, TwoLayerNet, resolve_backend, to_numpy


def test_names_resolve_to_array_api_namespaces(backend):
    b = resolve_backend(backend.name, backend.device)
    assert b == backend
    x = b.asarray(np.arange(3.0))
    assert b.owns(x)
    assert hasattr(b.xp, "__array_namespace_info__")
    np.testing.assert_array_equal(to_numpy(x), [0.0, 1.0, 2.0])


def test_a_namespace_module_resolves_like_its_name(backend):
    by_namespace = resolve_backend(backend.xp, backend.device)
    assert by_namespace.name == backend.name
    assert by_namespace == resolve_backend(backend.name, backend.device)


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_float_dtypes_are_looked_up_on_the_device(backend, name):
    x = backend.xp.zeros(3, dtype=backend.dtype(name), device=backend.device)
    assert to_numpy(x).dtype == np.dtype(name)


def test_unknown_backend_lists_the_supported_names():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as info:
        resolve_backend("tensorflow")
    for name in SUPPORTED_BACKENDS:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match="unknown backend"):
        TwoLayerNet(4, 10, 3, backend="numpyy")


def pretend_not_installed(monkeypatch, library):
    """Make ``importlib.util.find_spec(library)`` answer None, as for a missing package."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == library else real_find_spec(name, *a),
    )


@pytest.mark.parametrize(
    ("backend", "package"),
    [("torch", "torch"), ("jax", "jax"), ("array_api_strict", "array-api-strict")],
)
def test_missing_library_names_the_package_to_install(monkeypatch, backend, package):
    pretend_not_installed(monkeypatch, backend)
    with pytest.raises(ImportError, match=rf"install it with: pip install {package}$"):
        resolve_backend(backend)


def test_cupy_without_a_gpu_is_a_clear_runtime_error(monkeypatch):
    """A CuPy whose CUDA runtime finds no device, as on a machine without a GPU."""

    class CUDARuntimeError(RuntimeError):
        pass

    def no_device():
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    runtime = types.SimpleNamespace(getDeviceCount=no_device)
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU") as info:
        resolve_backend("cupy")
    assert "backend='numpy'" in str(info.value)
    assert info.value.__cause__ is None  # no chained CUDA traceback


def test_numpy_rejects_a_gpu_device():
    with pytest.raises(ValueError, match="'cpu' device only"):
        resolve_backend("numpy", device="cuda:0")


@pytest.mark.backend("torch")
def test_torch_cuda_device_without_a_gpu_is_a_clear_runtime_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU"):
        resolve_backend("torch", device="cuda:1")


def test_array_api_strict_devices_are_chosen_by_name():
    xps = pytest.importorskip("array_api_strict")
    assert resolve_backend("array_api_strict", device="device1").device == xps.Device("device1")
    with pytest.raises(ValueError, match="unknown array_api_strict device"):
        resolve_backend("array_api_strict", device="gpu7")


def test_float64_on_a_device_without_it_is_rejected():
    pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="'float64' is not supported"):
        TwoLayerNet(4, 10, 3, backend="array_api_strict", device="no_float64")
    net = TwoLayerNet(4, 10, 3, backend="array_api_strict", device="no_float64", dtype="float32")
    assert net.predict(np.zeros((2, 4))).shape == (2,)


def test_data_on_another_device_is_rejected():
    pytest.importorskip("array_api_strict")
    net = TwoLayerNet(4, 10, 3, backend="array_api_strict")
    elsewhere = resolve_backend("array_api_strict", device="device1").asarray(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="is on device"):
        net.predict(elsewhere)


@pytest.mark.backend("jax")
def test_jax_float64_needs_64_bit_mode(monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(jax.config, "read", lambda name: False)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        TwoLayerNet(4, 10, 3, backend="jax")


def test_array_api_strict_runs_at_its_strictest():
    xps = pytest.importorskip("array_api_strict")
    flags = xps.get_array_api_strict_flags()
    assert flags["boolean_indexing"] is False
    assert flags["data_dependent_shapes"] is False
    xps.reset_array_api_strict_flags()
    newest = xps.get_array_api_strict_flags()["api_version"]
    use_strictest_array_api_strict()
    assert xps.get_array_api_strict_flags()["api_version"] == newest


class _ArrayOnAnAccelerator:
    """An array whose DLPack export refuses the CPU, as JAX's and torch's GPU arrays do."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def __array_namespace__(self, api_version=None):
        return np

    def __dlpack_device__(self):
        return (2, 0)  # kDLCUDA

    def __dlpack__(self, **kwargs):
        raise BufferError("Unsupported device in DLTensor.")

    def __array__(self, dtype=None, copy=None):
        return self.values


def test_to_numpy_copies_arrays_that_dlpack_cannot_export_to_the_host():
    np.testing.assert_array_equal(to_numpy(_ArrayOnAnAccelerator([1.0, 2.0])), [1.0, 2.0])


def test_to_numpy_reads_every_backend_and_device(backend):
    values = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(to_numpy(backend.asarray(values)), values)


def test_a_module_that_is_not_a_namespace_is_a_value_error():
    import math

    with pytest.raises(ValueError, match="'math' is not an Array API namespace"):
        TwoLayerNet(4, 10, 3, backend=math)


def test_cupy_without_a_gpu_says_so_rather_than_to_install_it(monkeypatch):
    from xpnet.backend import _table

    pretend_not_installed(monkeypatch, "cupy")
    monkeypatch.setattr(_table, "cuda_driver_major", lambda: None)
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU") as info:
        resolve_backend("cupy")
    assert "pip install" not in str(info.value)
