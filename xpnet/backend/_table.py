"""The table of backends: every array library xpnet runs on, in one place.

Each row says how to install the library, how to recognise its namespace, how to
turn a user's ``device=`` into the library's device, and which devices a test run
on this machine covers. ``xpnet.backend`` builds on it, and so do ``noxfile.py``
(which loads this file by path, before xpnet is installed: nothing outside the
standard library is imported at module level) and the test fixture.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: noxfile.py loads this file before xpnet is installed
    from xpnet._typing import Device, Namespace

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "allow_float64",
    "cuda_driver_major",
    "gpu_devices",
    "import_library",
    "portable_device",
]


@dataclass(frozen=True)
class BackendSpec:
    """One array library as xpnet knows it.

    Attributes
    ----------
    name : str
        The ``backend=`` name.
    module : str
        The module to import.
    package : str
        The package on the index that installs it (``pip install PACKAGE``).
    requirements : str or None
        The file under ``backends/`` (without ``.txt``) that installs it for the CPU;
        None for a library that runs only on a GPU.
    gpu_requirements : dict of int to str
        By the CUDA major version of the NVIDIA driver, the file that installs its
        CUDA build.
    needs_gpu : bool
        Whether it runs only on an NVIDIA GPU.
    namespace_test : str
        The ``array_api_compat`` function that recognises its namespace.
    resolve : callable
        ``resolve(device) -> (xp, device)``: the namespace and the library's device.
    test_devices : callable
        ``test_devices() -> list``: the devices a test run on this machine covers.
    """

    name: str
    module: str
    package: str
    requirements: str | None
    gpu_requirements: dict[int, str]
    needs_gpu: bool
    namespace_test: str
    resolve: Callable[[Device | None], tuple[Namespace, Device]] = field(repr=False)
    test_devices: Callable[[], list[Device | None]] = field(repr=False)

    def gpu_requirements_for(self, cuda_major: int) -> str | None:
        """The requirements file of the CUDA build for a driver of ``cuda_major``."""
        fitting = [major for major in self.gpu_requirements if major <= cuda_major]
        return self.gpu_requirements[max(fitting)] if fitting else None


def import_library(spec: BackendSpec) -> ModuleType:
    """Import ``spec``'s library.

    Raises
    ------
    RuntimeError
        If the library runs only on an NVIDIA GPU, is not installed, and this
        machine has no NVIDIA driver: installing it would not help.
    ImportError
        If it is not installed; the message names what to install.
    """
    if importlib.util.find_spec(spec.module) is None:
        if spec.needs_gpu and cuda_driver_major() is None:
            raise RuntimeError(
                f"backend {spec.name!r} needs an NVIDIA GPU with a CUDA driver, and this "
                "machine has none (no nvidia-smi); use backend='numpy' here"
            )
        raise ImportError(
            f"backend {spec.name!r} needs the {spec.module} package, which is not installed; "
            f"install it with: pip install {spec.package}"
        )
    return importlib.import_module(spec.module)


def cuda_driver_major() -> int | None:
    """The CUDA version of the NVIDIA driver (from ``nvidia-smi``), or None without one."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return None
    try:
        output = subprocess.run(
            [nvidia_smi], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    marker = "CUDA Version:"
    if marker not in output:
        return None
    version = output.split(marker, 1)[1].split()[0]
    return int(version.split(".")[0]) if version.split(".")[0].isdigit() else None


def allow_float64(name: str) -> None:
    """Let backend ``name`` compute in float64 where that takes a global switch.

    JAX computes in float32 unless its 64-bit mode is on; this turns it on (for the
    whole process: the command line does it when asked for float64 on JAX). The
    other backends need nothing.
    """
    if name == "jax" and importlib.util.find_spec("jax") is not None:
        import jax

        jax.config.update("jax_enable_x64", True)


def portable_device(name: str, device: Device) -> Device:
    """``device`` in a form that pickles and that backend ``name``'s resolver takes back:
    ``"gpu:0"`` for a JAX device, the index for a CuPy one; others as they are."""
    if name == "jax":
        jax = importlib.import_module("jax")
        return f"{device.platform}:{jax.devices(device.platform).index(device)}"
    if name == "cupy":
        return int(device.id)
    return device


def gpu_devices(name: str) -> list[Device]:
    """The GPU devices of backend ``name`` on this machine, as ``device=`` takes them.

    Empty for a CPU-only backend, a missing library or a machine without GPUs. A
    search puts one worker on each.
    """
    try:
        if name == "cupy" and cuda_driver_major() is not None:
            cupy = importlib.import_module("cupy")
            return list(range(cupy.cuda.runtime.getDeviceCount()))
        if name == "torch":
            torch = importlib.import_module("torch")
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            return [f"cuda:{index}" for index in range(count)]
        if name == "jax":
            jax = importlib.import_module("jax")
            return [f"gpu:{index}" for index in range(len(jax.devices("gpu")))]
    except Exception:  # no library, no driver, no GPU platform: no GPUs to use
        return []
    return []


def _compat() -> ModuleType:
    return importlib.import_module("xpnet.backend._compat")  # imported when first resolving


# Resolvers: ``device=`` as a user writes it, to the library's device.


def _numpy(device: Device | None) -> tuple[Namespace, Device]:
    import numpy as np

    if device not in (None, "cpu", "cpu:0"):
        raise ValueError(f"backend 'numpy' runs on the 'cpu' device only, got device={device!r}")
    return _compat().array_namespace(np.empty(0)), "cpu"


def _array_api_strict(device: Device | None) -> tuple[Namespace, Device]:
    xp = import_library(BACKENDS["array_api_strict"])
    info = xp.__array_namespace_info__()
    if device is None:
        return xp, info.default_device()
    if isinstance(device, xp.Device):
        return xp, device
    try:
        return xp, xp.Device(device)
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown array_api_strict device {device!r}; choose from {info.devices()}"
        ) from None


def _torch(device: Device | None) -> tuple[Namespace, Device]:
    torch = import_library(BACKENDS["torch"])
    try:
        device = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"invalid torch device {device!r}: {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RuntimeError(
                f"torch device {str(device)!r} needs an NVIDIA GPU with CUDA, but torch sees "
                "none on this machine; use device='cpu' (or omit device=)"
            )
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise ValueError(f"torch device {str(device)!r} does not exist: {count} CUDA device(s)")
        device = torch.device("cuda", index)  # "cuda" and "cuda:0" name one device
    elif device.type == "cpu":
        device = torch.device("cpu")  # "cpu:0" is "cpu"
    return _compat().array_namespace(torch.empty(0)), device


def _cupy(device: Device | None) -> tuple[Namespace, Device]:
    import_library(BACKENDS["cupy"])
    try:
        cupy = importlib.import_module("cupy")
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver or runtime missing: CuPy raises many kinds
        raise RuntimeError(
            "backend 'cupy' needs an NVIDIA GPU with a working CUDA driver, and CuPy found "
            f"none ({type(err).__name__}: {err}); use backend='numpy' on this machine"
        ) from None
    if count == 0:
        raise RuntimeError(
            "backend 'cupy' needs an NVIDIA GPU, and CuPy sees none on this machine; "
            "use backend='numpy' instead"
        )
    index = 0 if device is None else getattr(device, "id", device)
    if isinstance(index, str) and index.startswith(("cuda:", "gpu:")):
        index = index.split(":", 1)[1]
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"cupy device must be an integer in [0, {count}), got {device!r}")
    with cupy.cuda.Device(index):
        xp = _compat().array_namespace(cupy.empty(0))
    return xp, cupy.cuda.Device(index)


def _jax(device: Device | None) -> tuple[Namespace, Device]:
    jax = import_library(BACKENDS["jax"])
    xp = importlib.import_module("jax.numpy")
    devices = jax.devices()
    if device is None:
        return xp, devices[0]
    if isinstance(device, bool):
        raise ValueError(f"invalid jax device {device!r}")
    if isinstance(device, int):
        if not 0 <= device < len(devices):
            raise ValueError(f"jax device must be in [0, {len(devices)}), got {device}")
        return xp, devices[device]
    if isinstance(device, str):  # "cpu", "gpu", "cuda:1": a platform and an index
        platform, _, index = device.partition(":")
        try:
            found = jax.devices("gpu" if platform == "cuda" else platform)
        except RuntimeError:
            found = []
        if not index.isdigit() and index:
            found = []
        position = int(index) if index else 0
        if position < len(found):
            return xp, found[position]
        raise ValueError(
            f"unknown jax device {device!r}; this machine has {[str(d) for d in devices]}"
        )
    if device in devices or getattr(device, "platform", None) is not None:
        return xp, device
    raise ValueError(f"unknown jax device {device!r}; choose from {devices}")


# The devices a test run covers: the CPU, and the first GPU where there is one.


def _cpu_only() -> list[Device | None]:
    return ["cpu"]


def _strict_devices() -> list[Device | None]:
    """Its default device and a second one, so that an array made on the wrong device
    (a missing ``device=``) fails as it would on a GPU."""
    return [None, "device1"]


def _torch_devices() -> list[Device | None]:
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return ["cpu"]
    return ["cpu", "cuda:0"] if torch.cuda.is_available() else ["cpu"]


def _cupy_devices() -> list[Device | None]:
    return [0]


def _jax_devices() -> list[Device | None]:
    try:
        jax = importlib.import_module("jax")
        has_gpu = bool(jax.devices("gpu"))
    except (ImportError, RuntimeError):
        has_gpu = False
    return ["cpu", "gpu:0"] if has_gpu else ["cpu"]


#: Every backend, by its ``backend=`` name.
BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "numpy", "numpy", "numpy", "numpy", {}, False, "is_numpy_namespace",
            _numpy, _cpu_only,
        ),
        BackendSpec(
            "array_api_strict", "array_api_strict", "array-api-strict", "array_api_strict", {},
            False, "is_array_api_strict_namespace", _array_api_strict, _strict_devices,
        ),
        BackendSpec(
            "torch", "torch", "torch", "torch", {12: "torch"}, False,
            "is_torch_namespace", _torch, _torch_devices,
        ),
        BackendSpec(
            "jax", "jax", "jax", "jax", {12: "jax-cuda12", 13: "jax-cuda13"}, False,
            "is_jax_namespace", _jax, _jax_devices,
        ),
        BackendSpec(
            "cupy", "cupy", "cupy-cuda12x", None, {12: "cupy-cuda12x", 13: "cupy-cuda13x"}, True,
            "is_cupy_namespace", _cupy, _cupy_devices,
        ),
    )
}  # fmt: skip
