"""Backend resolution: the one module that knows which array libraries exist.

Everything numerical in xpnet receives an Array API namespace ``xp`` (from
``array_api_compat``) and a device, and never asks which library it is. This
module turns a user's ``backend=`` and ``device=`` into that pair, and converts
arrays to and from NumPy at the edges.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["SUPPORTED_BACKENDS", "Backend", "resolve_backend", "to_numpy"]

#: Backend names accepted by ``backend=``, with the pip extra that installs each.
SUPPORTED_BACKENDS: dict[str, str] = {
    "numpy": "xpnet",
    "array_api_strict": "xpnet[test]",
    "torch": "xpnet[torch]",
    "cupy": "xpnet[cupy]",
    "jax": "xpnet[jax]",
}

#: Floating dtypes a network can use.
FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Backend:
    """An array library, as the rest of xpnet sees it.

    Attributes
    ----------
    name : str
        One of :data:`SUPPORTED_BACKENDS`, or the module name of a namespace
        ``array_api_compat`` does not know by name.
    xp : module
        The Array API namespace (``array_api_compat``'s wrapper where one exists).
    device : object
        The device arrays are created on, in the library's own terms.
    """

    name: str
    xp: ModuleType
    device: Any

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Return ``x`` (a NumPy array, scalar or sequence) as an array on this device."""
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    def dtype(self, name: str) -> Any:
        """Return the floating dtype called ``name`` ("float32" or "float64").

        Raises
        ------
        ValueError
            If ``name`` is not a floating dtype xpnet supports, or the device
            does not support it.
        """
        if name not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be one of {FLOAT_DTYPES}, got {name!r}")
        supported = self.xp.__array_namespace_info__().dtypes(
            device=self.device, kind="real floating"
        )
        if name == "float64" and self.name == "jax" and not _jax_x64_enabled():
            raise ValueError(
                "backend 'jax' computes in float32 unless 64-bit mode is on: use "
                "dtype='float32', or call jax.config.update('jax_enable_x64', True) "
                "(or set JAX_ENABLE_X64=1) before creating arrays"
            )
        if name not in supported:
            raise ValueError(
                f"dtype {name!r} is not supported by backend {self.name!r} on device "
                f"{self.device!r}; use one of {sorted(supported)}"
            )
        return supported[name]

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend's library."""
        if not array_api_compat.is_array_api_obj(x):
            return False
        return array_api_compat.array_namespace(x) is self.xp


def resolve_backend(backend: str | ModuleType = "numpy", device: Any = None) -> Backend:
    """Turn ``backend=`` and ``device=`` into a :class:`Backend`.

    Parameters
    ----------
    backend : str or module
        ``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"cupy"`` or ``"jax"``,
        or an array namespace such as ``array_api_strict`` or ``cupy`` itself.
    device : object, optional
        The device to use: ``"cuda:1"`` for torch, ``1`` for CuPy, an index into
        ``jax.devices()`` or a JAX device. The library's default device when None.

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        For an unknown backend name or an invalid device.
    ImportError
        If the library is not installed; the message names the pip extra.
    RuntimeError
        If the library needs a GPU (CuPy, or torch with a CUDA device) and the
        machine has none.
    """
    if isinstance(backend, ModuleType):
        name = _namespace_name(backend)
        if name not in SUPPORTED_BACKENDS:
            xp = array_api_compat.array_namespace(backend.asarray(0))
            return Backend(name, xp, _default_device(xp) if device is None else device)
    elif isinstance(backend, str) and backend in SUPPORTED_BACKENDS:
        name = backend
    else:
        raise ValueError(
            f"unknown backend {backend!r}; supported backends are "
            f"{', '.join(map(repr, SUPPORTED_BACKENDS))}, or an Array API namespace"
        )
    return _RESOLVERS[name](device)


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x``, an array of any supported library, as a NumPy array on the host."""
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_array_api_obj(x):
        return np.from_dlpack(x)
    return np.asarray(x)


def use_strictest_array_api_strict() -> None:
    """Set array-api-strict to its newest standard with its optional features off.

    With boolean indexing and data-dependent shapes disabled, any call outside the
    core standard fails; xpnet's tests and checks run this way. Does nothing if
    array-api-strict is not installed.
    """
    if importlib.util.find_spec("array_api_strict") is None:
        return
    import array_api_strict

    array_api_strict.reset_array_api_strict_flags()  # the default version is the newest
    array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)


def enable_jax_float64() -> None:
    """Turn on JAX's 64-bit mode, without which it computes in float32 only.

    Does nothing if JAX is not installed.
    """
    if importlib.util.find_spec("jax") is None:
        return
    import jax

    jax.config.update("jax_enable_x64", True)


def _namespace_name(namespace: ModuleType) -> str:
    checks = {
        "numpy": array_api_compat.is_numpy_namespace,
        "array_api_strict": array_api_compat.is_array_api_strict_namespace,
        "torch": array_api_compat.is_torch_namespace,
        "cupy": array_api_compat.is_cupy_namespace,
        "jax": array_api_compat.is_jax_namespace,
    }
    for name, is_namespace in checks.items():
        if is_namespace(namespace):
            return name
    return namespace.__name__


def _default_device(xp: ModuleType) -> Any:
    return xp.__array_namespace_info__().default_device()


def _import(name: str) -> ModuleType:
    if importlib.util.find_spec(name) is None:
        raise ImportError(
            f"backend {name!r} needs the {name} package, which is not installed; "
            f"install it with: pip install '{SUPPORTED_BACKENDS[name]}'"
        )
    return importlib.import_module(name)


def _numpy(device: Any) -> Backend:
    xp = array_api_compat.array_namespace(np.empty(0))
    if device not in (None, "cpu"):
        raise ValueError(f"backend 'numpy' runs on the 'cpu' device only, got device={device!r}")
    return Backend("numpy", xp, "cpu")


def _array_api_strict(device: Any) -> Backend:
    xp = _import("array_api_strict")
    if device is None:
        device = _default_device(xp)
    elif not isinstance(device, xp.Device):
        try:
            device = xp.Device(device)
        except ValueError:
            devices = xp.__array_namespace_info__().devices()
            raise ValueError(
                f"unknown array_api_strict device {device!r}; choose from {devices}"
            ) from None
    return Backend("array_api_strict", xp, device)


def _torch(device: Any) -> Backend:
    torch = _import("torch")
    try:
        device = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"invalid torch device {device!r}: {err}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise RuntimeError(
                f"torch device {str(device)!r} needs an NVIDIA GPU with CUDA, but torch sees "
                "none on this machine; use device='cpu' (or omit device=)"
            )
        if (device.index or 0) >= count:
            raise ValueError(f"torch device {str(device)!r} does not exist: {count} CUDA device(s)")
    return Backend("torch", array_api_compat.array_namespace(torch.empty(0)), device)


def _cupy(device: Any) -> Backend:
    if importlib.util.find_spec("cupy") is None:
        _import("cupy")
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
    if not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"cupy device must be an integer in [0, {count}), got {device!r}")
    xp = importlib.import_module("array_api_compat.cupy")
    return Backend("cupy", xp, cupy.cuda.Device(index))


def _jax(device: Any) -> Backend:
    jax = _import("jax")
    devices = jax.devices()
    if device is None:
        device = devices[0]
    elif isinstance(device, int):
        if not 0 <= device < len(devices):
            raise ValueError(f"jax device must be in [0, {len(devices)}), got {device}")
        device = devices[device]
    elif device not in devices:
        raise ValueError(f"unknown jax device {device!r}; choose from {devices}")
    return Backend("jax", importlib.import_module("jax.numpy"), device)


def _jax_x64_enabled() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))


_RESOLVERS = {
    "numpy": _numpy,
    "array_api_strict": _array_api_strict,
    "torch": _torch,
    "cupy": _cupy,
    "jax": _jax,
}
