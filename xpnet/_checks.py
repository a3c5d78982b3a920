"""Argument and input checks shared by the public API.

Every check raises before any work is done or any parameter changes, with a
message that names the bad value and what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from array_api_compat import device as device_of

from xpnet.backend import Backend


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def real(name: str, value: Any, *, low: float, high: float = np.inf, low_open: bool) -> float:
    """Return ``value`` as a float, or raise ValueError unless it lies in the given range.

    The range is ``(low, high]`` when ``low_open`` else ``[low, high]``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def to_backend(backend: Backend, x: Any, name: str, dtype: Any = None) -> tuple[Any, bool]:
    """Return ``x`` as an array of ``backend`` on its device, and whether it came from the host.

    NumPy arrays, scalars and sequences are copied to the device (cast to
    ``dtype`` when given); arrays of the backend must already be on its device.

    Raises
    ------
    TypeError
        If ``x`` is an array of another library.
    ValueError
        If ``x`` is on another device than the backend's.
    """
    if isinstance(x, np.ndarray | np.generic | list | tuple | numbers.Number):
        host = np.asarray(x)
        if host.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {host.dtype}")
        return backend.asarray(host, dtype=dtype), True
    if not backend.owns(x):
        raise TypeError(
            f"{name} must be a NumPy array or an array of the network's backend "
            f"({backend.name!r}), got {type(x).__module__}.{type(x).__name__}"
        )
    if device_of(x) != backend.device:
        raise ValueError(
            f"{name} is on device {device_of(x)!r} but the network is on "
            f"{backend.device!r}; move it there first or pass a NumPy array"
        )
    if dtype is not None and x.dtype != dtype:
        x = backend.xp.astype(x, dtype)
    return x, False


def features(backend: Backend, X: Any, input_size: int, dtype: Any) -> tuple[Any, bool]:
    """Check and convert inputs ``X``, shape (N, D), to the backend's ``dtype``.

    Returns the array and whether ``X`` came from the host (NumPy).
    """
    X, from_host = to_backend(backend, X, "X", dtype)
    xp = backend.xp
    if X.ndim != 2 or X.shape[1] != input_size:
        raise ValueError(
            f"X must have shape (N, {input_size}) (one row of {input_size} features per "
            f"sample), got shape {tuple(X.shape)}; reshape images to rows first"
        )
    if X.shape[0] == 0:
        raise ValueError("X is empty: it has no rows")
    # NaN propagates through max and min, and an infinity becomes one of them: two
    # reductions find either without a temporary the size of X.
    if xp.isdtype(X.dtype, "real floating") and not bool(
        xp.isfinite(xp.max(X)) & xp.isfinite(xp.min(X))
    ):
        raise ValueError("X contains NaN or infinity; clean or impute the data first")
    return X, from_host


def labels(backend: Backend, y: Any, num_samples: int, num_classes: int) -> Any:
    """Check and convert integer class labels ``y``, shape (N,), with values in [0, C)."""
    y, _ = to_backend(backend, y, "y")
    xp = backend.xp
    if not xp.isdtype(y.dtype, "integral"):
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != num_samples:
        raise ValueError(
            f"y must have shape ({num_samples},), one label per row of X, "
            f"got shape {tuple(y.shape)}"
        )
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for a network with {num_classes} classes, "
            f"got labels from {low} to {high}"
        )
    index_dtype = xp.__array_namespace_info__().default_dtypes(device=backend.device)["indexing"]
    return y if y.dtype == index_dtype else xp.astype(y, index_dtype)
