"""From a user's ``backend=`` and ``device=`` to a namespace and a device, and back to NumPy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import numpy as np

from xpnet._typing import Array, ArrayDType, ArrayLike, Device, Namespace
from xpnet.backend import _compat
from xpnet.backend._memory import Memory, host_memory
from xpnet.backend._table import BACKENDS, BackendSpec, portable_device

__all__ = [
    "FLOAT_DTYPES",
    "SUPPORTED_BACKENDS",
    "Backend",
    "CompiledPath",
    "resolve_backend",
    "to_numpy",
]

#: The compiled training paths a library may have (:attr:`Backend.compiled_path`).
CompiledPath = Literal["jit", "cuda graph"]

#: Backend names accepted by ``backend=``, with the package that installs each.
SUPPORTED_BACKENDS: dict[str, str] = {name: spec.package for name, spec in BACKENDS.items()}

#: Floating dtypes a network can use.
FLOAT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Backend:
    """An array library on one device, as the rest of xpnet sees it.

    Attributes
    ----------
    name : str
        A key of :data:`SUPPORTED_BACKENDS`, or the module name of a namespace
        that ``array_api_compat`` does not know by name.
    xp : module
        The Array API namespace (``array_api_compat``'s wrapper where one exists).
    device : object
        The device arrays are created on, in the library's own terms.
    """

    name: str
    xp: Namespace
    device: Device

    def __reduce__(self) -> tuple[Callable[..., Backend], tuple[str, Device]]:
        """Pickle by name and device; unpickling resolves them again (modules do not pickle)."""
        if self.spec is None:
            raise TypeError(f"a Backend of the unlisted namespace {self.name!r} cannot be pickled")
        return (resolve_backend, (self.name, portable_device(self.name, self.device)))

    def __str__(self) -> str:
        return f"{self.name} on {self.device_name}"

    @property
    def device_name(self) -> str:
        """The device as text: ``"cpu"``, ``"cuda:0"``, ``"CPU_DEVICE"``."""
        device = str(self.device)  # array-api-strict writes "array_api_strict.Device('name')"
        if device.endswith("')") and "Device('" in device:
            device = device.split("Device('", 1)[1][:-2]
        return device

    @property
    def compiled_path(self) -> CompiledPath | None:
        """How this library compiles many training steps into one call on this device, if
        it can: ``"jit"`` (JAX's ``jit`` of ``lax.scan``, every device), ``"cuda graph"``
        (torch on CUDA), None elsewhere (CuPy's stream capture refuses cuBLAS calls,
        cupy/cupy#6290). :mod:`xpnet.training` has a runner for each."""
        if self.name == "jax":
            return "jit"
        if self.name == "torch" and getattr(self.device, "type", None) == "cuda":
            return "cuda graph"
        return None

    @property
    def spec(self) -> BackendSpec | None:
        """This backend's row of the backend table (None for an unlisted namespace)."""
        return BACKENDS.get(self.name)

    def asarray(self, x: ArrayLike, dtype: ArrayDType | None = None) -> Array:
        """Return ``x`` (a NumPy array, scalar or sequence) as an array on this device."""
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    def dtype(self, name: str) -> ArrayDType:
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

    def owns(self, x: object) -> bool:
        """Whether ``x`` is an array of this backend's library."""
        return _compat.is_array_api_obj(x) and _compat.array_namespace(x) is self.xp

    def holds(self, x: Array) -> bool:
        """Whether ``x``, an array of this library, is on this backend's device.

        Devices are compared by what they are, not how they are written: torch's
        ``"cpu"`` and ``"cpu:0"``, or ``"cuda"`` and ``"cuda:0"`` on a one-GPU machine.
        """
        return bool(self.canonical_device(_compat.device_of(x)) == self.device)

    def untracked(self, x: Array) -> Array:
        """``x`` without autodiff tracking (torch's ``detach``), sharing its memory."""
        if _compat.is_torch_array(x) and x.requires_grad:
            return x.detach()
        return x

    @property
    def lazy(self) -> bool:
        """Whether the library builds its arrays lazily (Dask): it predicts chunk by
        chunk, but a training loop would grow one graph of every step."""
        return self.spec is None and not _compat.has_values(self.asarray(0.0))

    def memory(self) -> Memory | None:
        """The memory a computation may take on this backend's device, and what bounds
        it: a GPU's total memory; on the host, what is available to this process within
        its limits (:func:`~xpnet.backend._memory.host_memory`). None where it cannot say."""
        device = self.device
        try:
            total = None
            if _compat.is_torch_namespace(self.xp) and device.type == "cuda":
                import torch

                total = int(torch.cuda.get_device_properties(device).total_memory)
            elif self.name == "cupy":
                total = int(device.mem_info[1])
            elif hasattr(device, "memory_stats"):
                stats = device.memory_stats()
                total = int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None
            if total is not None:
                return Memory(total, "the device's total memory")
        except Exception:  # a library that cannot answer: fall back to the host's memory
            pass
        return host_memory()

    def canonical_device(self, device: Device) -> Device:
        """``device`` as this backend's resolver writes it (unchanged if it cannot say)."""
        if self.spec is None:
            return device
        try:
            return self.spec.resolve(device)[1]
        except (ValueError, RuntimeError, TypeError):
            return device


def resolve_backend(
    backend: str | Namespace | Backend = "numpy", device: Device | None = None
) -> Backend:
    """Turn ``backend=`` and ``device=`` into a :class:`Backend`.

    Parameters
    ----------
    backend : str, module or Backend
        ``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"cupy"`` or ``"jax"``;
        an array namespace such as ``array_api_strict`` or ``cupy`` itself; or a
        :class:`Backend`, returned as it is.
    device : object, optional
        The device to use: ``"cuda:1"`` for torch, ``1`` for CuPy, an index into
        ``jax.devices()``, a platform such as ``"gpu:0"`` or a JAX device. The
        library's default device when None.

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        For an unknown backend name or an invalid device.
    ImportError
        If the library is not installed; the message names the package to install.
    RuntimeError
        If the library needs a GPU (CuPy, or torch with a CUDA device) and the
        machine has none.

    Notes
    -----
    NumPy's global random state is the same after the call as before, even where
    importing the library draws from it.
    """
    if isinstance(backend, Backend):
        if device is not None and backend.canonical_device(device) != backend.device:
            raise ValueError(f"device={device!r} contradicts the backend's device {backend}")
        return backend
    if isinstance(backend, ModuleType):
        name = _namespace_name(backend)
        if name not in BACKENDS:
            if not hasattr(backend, "asarray") or not hasattr(backend, "__array_namespace_info__"):
                raise ValueError(
                    f"module {backend.__name__!r} is not an Array API namespace; use one of "
                    f"{', '.join(map(repr, BACKENDS))} or a namespace such as array_api_strict"
                )
            xp = _compat.array_namespace(backend.asarray(0))
            info = xp.__array_namespace_info__()
            return Backend(name, xp, info.default_device() if device is None else device)
    elif isinstance(backend, str) and backend in BACKENDS:
        name = backend
    else:
        raise ValueError(
            f"unknown backend {backend!r}; supported backends are "
            f"{', '.join(map(repr, BACKENDS))}, or an Array API namespace"
        )
    # Importing a library may draw from NumPy's global random state (JAX does), which
    # would change the weights and batches the lab seeds with np.random.seed.
    random_state = np.random.get_state()  # noqa: NPY002 (the lab's global state)
    try:
        xp, resolved = BACKENDS[name].resolve(device)
    finally:
        np.random.set_state(random_state)  # noqa: NPY002
    return Backend(name, xp, resolved)


def to_numpy(x: ArrayLike) -> np.ndarray:
    """Return ``x``, an array of any supported library on any device, as a NumPy array.

    GPU arrays are copied to the host: CuPy's with ``.get()``, torch's with ``.cpu()``,
    JAX's and others' through DLPack where the producer can export to the CPU, else
    through their ``__array__`` (which computes a Dask array). Arrays of the library
    ``sparse`` are made dense.

    Raises
    ------
    TypeError
        If NumPy cannot read ``x``'s numbers (an ndonnx array, above all a placeholder
        with no values), rather than return a NumPy array of objects.
    """
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if _compat.is_cupy_array(x):
        host: np.ndarray = x.get()
        return host
    if _compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if _compat.is_pydata_sparse_array(x):
        return np.asarray(x.todense())  # sparse refuses to densify implicitly
    if _compat.is_array_api_obj(x):
        try:
            return np.from_dlpack(x)
        except (AttributeError, BufferError, TypeError, RuntimeError, ValueError):
            pass  # not on the CPU, or no DLPack export (Dask): ask the library for a copy
    host = np.asarray(x)
    if host.dtype == object:  # NumPy wrapped what it could not read (an ndonnx placeholder)
        raise TypeError(
            f"cannot convert a {type(x).__module__}.{type(x).__name__} to a NumPy array: its "
            "library offers NumPy neither DLPack nor __array__ for it (and a lazy array such "
            "as an ndonnx placeholder has no values at all); convert it with its own library "
            "first, or pass arrays NumPy can read"
        )
    return host


def _namespace_name(namespace: Namespace) -> str:
    for name, spec in BACKENDS.items():
        if _compat.is_namespace(spec.namespace_test, namespace):
            return name
    return namespace.__name__


def _jax_x64_enabled() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))
