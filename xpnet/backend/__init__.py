"""Backends: the one package that knows which array libraries exist.

Everything numerical in xpnet receives an Array API namespace ``xp`` and a device,
and never asks which library it is. This package holds the rest: the table of
backends (:data:`BACKENDS`), turning ``backend=`` and ``device=`` into a
:class:`Backend`, conversion to NumPy at the edges, the ``array_api_compat``
helpers the package uses, and the runners that execute training steps eagerly or
compiled (JAX's ``jit``, torch's CUDA graphs).
"""

from xpnet.backend._compat import (
    array_namespace,
    device_of,
    has_values,
    is_array_api_obj,
    is_numpy_array,
    is_writeable_array,
    size,
)
from xpnet.backend._resolve import (
    FLOAT_DTYPES,
    SUPPORTED_BACKENDS,
    Backend,
    resolve_backend,
    to_numpy,
)
from xpnet.backend._runners import Compile, Runner, compiled_runner_kind, select_runner
from xpnet.backend._table import (
    BACKENDS,
    BackendSpec,
    allow_float64,
    gpu_devices,
    limit_threads,
    portable_device,
)

__all__ = [
    "BACKENDS",
    "FLOAT_DTYPES",
    "SUPPORTED_BACKENDS",
    "Backend",
    "BackendSpec",
    "Compile",
    "Runner",
    "allow_float64",
    "array_namespace",
    "compiled_runner_kind",
    "device_of",
    "gpu_devices",
    "has_values",
    "is_array_api_obj",
    "is_numpy_array",
    "is_writeable_array",
    "limit_threads",
    "portable_device",
    "resolve_backend",
    "select_runner",
    "size",
    "to_numpy",
]
