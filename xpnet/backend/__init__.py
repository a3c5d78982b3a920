"""Backends: the one package that knows which array libraries exist.

Everything numerical in xpnet receives an Array API namespace ``xp`` and a device,
and never asks which library it is. This package holds the rest: the table of
backends (:data:`BACKENDS`), turning ``backend=`` and ``device=`` into a
:class:`Backend`, conversion to NumPy at the edges, and the ``array_api_compat``
helpers the package uses, and which libraries compile many training steps into one
call (:attr:`Backend.compiled_path`); the runners that take the steps are in
:mod:`xpnet.training`. And the CPU threads a computation runs on, chosen for the size
of its products (:func:`choose_threads`, :func:`using_threads`), and the product that
splits a large one into halves run on two of them (:func:`matmul`, :func:`row_halves`).
"""

from xpnet.backend._compat import (
    array_namespace,
    device_of,
    dtype_name,
    has_values,
    is_array_api_obj,
    is_numpy_array,
    is_writeable_array,
    size,
)
from xpnet.backend._memory import Memory, host_memory
from xpnet.backend._products import SPLIT_FROM, matmul, product_size, row_halves
from xpnet.backend._resolve import (
    FLOAT_DTYPES,
    SUPPORTED_BACKENDS,
    Backend,
    CompiledPath,
    resolve_backend,
    to_numpy,
)
from xpnet.backend._table import (
    BACKENDS,
    BackendSpec,
    allow_float64,
    gpu_devices,
    portable_device,
)
from xpnet.backend._threads import (
    SPLIT_UP_TO,
    THREADS_BY_SIZE,
    available_threads,
    choose_threads,
    limit_threads,
    resolve_threads,
    runs_on_host_threads,
    using_threads,
)

__all__ = [
    "BACKENDS",
    "FLOAT_DTYPES",
    "SPLIT_FROM",
    "SPLIT_UP_TO",
    "SUPPORTED_BACKENDS",
    "THREADS_BY_SIZE",
    "Backend",
    "BackendSpec",
    "CompiledPath",
    "Memory",
    "allow_float64",
    "array_namespace",
    "available_threads",
    "choose_threads",
    "device_of",
    "dtype_name",
    "gpu_devices",
    "has_values",
    "host_memory",
    "is_array_api_obj",
    "is_numpy_array",
    "is_writeable_array",
    "limit_threads",
    "matmul",
    "portable_device",
    "product_size",
    "resolve_backend",
    "resolve_threads",
    "row_halves",
    "runs_on_host_threads",
    "size",
    "to_numpy",
    "using_threads",
]
