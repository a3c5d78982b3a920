"""The one import of ``array_api_compat``: the helpers xpnet uses, routed through here.

Every other module gets namespaces, devices and array tests from ``xpnet.backend``,
so a change of compat library (or a workaround for one of its versions) happens in
one place.
"""

from __future__ import annotations

from types import ModuleType

import array_api_compat
from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_cupy_array,
    is_jax_array,
    is_lazy_array,
    is_numpy_array,
    is_pydata_sparse_array,
    is_torch_array,
    is_torch_namespace,
    is_writeable_array,
    size,
)
from array_api_compat import device as device_of

from xpnet._typing import DType

__all__ = [
    "array_namespace",
    "device_of",
    "has_values",
    "is_array_api_obj",
    "is_cupy_array",
    "is_jax_array",
    "is_lazy_array",
    "is_namespace",
    "is_numpy_array",
    "is_pydata_sparse_array",
    "is_torch_array",
    "is_torch_namespace",
    "is_writeable_array",
    "size",
]


def is_namespace(test: str, namespace: ModuleType) -> bool:
    """Apply ``array_api_compat``'s namespace test called ``test`` (``"is_torch_namespace"``)."""
    return bool(getattr(array_api_compat, test)(namespace))


def dtype_name(dtype: object) -> DType:
    """``"float32"`` or ``"float64"`` for a floating dtype of any library (xpnet's two)."""
    return "float32" if "float32" in str(dtype) else "float64"


def has_values(x: object) -> bool:
    """Whether ``x``'s values can be read now and cheaply (``bool``, ``float``).

    False for lazy arrays: a Dask array (reading computes its whole graph) or an
    ndonnx placeholder (no values at all). JAX arrays outside a trace have values,
    though ``is_lazy_array`` errs towards True for them.
    """
    return is_jax_array(x) or not is_lazy_array(x)
