"""Argument and input checks shared by the public API.

Every check raises before any work is done or any parameter changes, with a
message that names the bad value and what was expected.
"""

from __future__ import annotations

import math
import numbers
from typing import TypedDict, TypeVar, cast

import numpy as np

from xpnet._typing import DTYPES, INITS, Array, ArrayDType, ArrayLike, DType, Init
from xpnet.backend import Backend, device_of, has_values, to_numpy

_T = TypeVar("_T")


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int; TypeError unless it is an integer, ValueError unless >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def seed(value: object) -> int:
    """Return ``value`` as an int; TypeError unless it is an integer, ValueError unless >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def real(name: str, value: object, *, low: float, high: float = math.inf, low_open: bool) -> float:
    """Return ``value`` as a float, if it is a real number in the given range.

    The range is ``(low, high]`` when ``low_open`` else ``[low, high]``; an infinite
    ``high`` is open, since only finite numbers pass.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (a string, None, a bool, a complex number).
    ValueError
        If it is NaN, infinite or outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int or Fraction beyond float's range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    too_low = number <= low if low_open else number < low
    if too_low or number > high:
        left = "(" if low_open else "["
        right = f"{high:g}]" if math.isfinite(high) else "inf)"
        raise ValueError(f"{name} must be in {left}{low:g}, {right}, got {value!r}")
    return number


def choice(name: str, value: object, allowed: tuple[_T, ...]) -> _T:
    """Return ``value`` if it is one of ``allowed`` (True is not 1), else raise ValueError."""
    try:
        found = any(
            isinstance(value, bool) == isinstance(a, bool) and bool(value == a) for a in allowed
        )
    except (TypeError, ValueError):  # an array, or a value that does not compare
        found = False
    if not found:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return cast(_T, value)  # it equals one of allowed


def dtype(value: object) -> DType:
    """Return ``value`` if it names a dtype a network computes in; TypeError unless it
    is a string, ValueError unless it is one of them. Needs no backend."""
    if not isinstance(value, str):
        raise TypeError(f"dtype must be one of {DTYPES}, got {value!r}")
    return choice("dtype", value, DTYPES)


def flag(name: str, value: object) -> bool:
    """Return ``value`` as a bool; TypeError unless it is one (NumPy's included)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def optional_callable(name: str, value: _T) -> _T:
    """Return ``value`` if it is callable or None; else TypeError."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {value!r}")
    return value


def to_backend(
    backend: Backend, x: ArrayLike, name: str, dtype: ArrayDType | None = None
) -> tuple[Array, bool]:
    """Return ``x`` as an array of ``backend`` on its device, and whether it came from the host.

    NumPy arrays, scalars and sequences are copied to the device (cast to
    ``dtype`` when given); arrays of the backend must already be on its device,
    and lose any autodiff tracking (torch's ``requires_grad``), so that nothing the
    network computes from them holds a graph.

    Raises
    ------
    TypeError
        If ``x`` is an array of another library.
    ValueError
        If ``x`` is on another device than the backend's, or holds no real numbers.
    """
    if isinstance(x, np.ndarray | np.generic | list | tuple | numbers.Number):
        host = np.asarray(x)
        if host.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers, got dtype {host.dtype}")
        with np.errstate(over="ignore"):  # values beyond the dtype: reported by features()
            return backend.asarray(host, dtype=dtype), True
    if not backend.owns(x):
        raise TypeError(
            f"{name} must be a NumPy array or an array of the network's backend "
            f"({backend.name!r}), got {type(x).__module__}.{type(x).__name__}"
        )
    if not backend.holds(x):
        raise ValueError(
            f"{name} is on device {backend.canonical_device(device_of(x))!r} but the network is "
            f"on {backend.device!r}; move it there first or pass a NumPy array"
        )
    x = backend.untracked(x)
    if dtype is not None and x.dtype != dtype:
        x = backend.xp.astype(x, dtype)
    return x, False


def features(
    backend: Backend, X: ArrayLike, input_size: int, dtype: ArrayDType, name: str = "X"
) -> tuple[Array, bool]:
    """Check and convert inputs ``X``, shape (N, D), to the backend's ``dtype``.

    Returns the array and whether ``X`` came from the host (NumPy).
    """
    original = X
    X, from_host = to_backend(backend, X, name, dtype)
    xp = backend.xp
    if X.ndim != 2 or X.shape[1] != input_size:
        raise ValueError(
            f"{name} must have shape (N, {input_size}) (one row of {input_size} features per "
            f"sample), got shape {tuple(X.shape)}; reshape images to rows first"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no rows")
    # NaN propagates through max and min, and an infinity becomes one of them: two
    # reductions find either without a temporary the size of X. A lazy array's values
    # are not read (that would compute it whole): its NaN propagate to the results.
    if (
        has_values(X)
        and xp.isdtype(X.dtype, "real floating")
        and not bool(xp.isfinite(xp.max(X)) & xp.isfinite(xp.min(X)))
    ):
        raise ValueError(_non_finite_message(name, original, X.dtype))
    return X, from_host


def _non_finite_message(name: str, original: ArrayLike, dtype: ArrayDType) -> str:
    """Why converted inputs are not finite: NaN or infinity in them, or beyond ``dtype``."""
    values = np.asarray(to_numpy(original), dtype=np.float64)
    if np.all(np.isfinite(values)):
        largest = float(np.max(np.abs(values)))
        return (
            f"{name} has values up to {largest:.3g} in magnitude, beyond the range of the "
            f"network's {dtype} ({np.finfo(np.float32).max:.3g}); scale the data or use "
            "dtype='float64'"
        )
    return f"{name} contains NaN or infinity; clean or impute the data first"


def labels(
    backend: Backend, y: ArrayLike, num_samples: int, num_classes: int, name: str = "y"
) -> Array:
    """Check and convert integer class labels ``y``, shape (N,), with values in [0, C).

    Labels of any integer dtype, signed or unsigned, come back in the device's
    default index dtype.
    """
    xp = backend.xp
    index_dtype = xp.__array_namespace_info__().default_dtypes(device=backend.device)["indexing"]
    if isinstance(y, np.ndarray | np.generic | list | tuple | numbers.Number):
        host = np.asarray(y)
        _check_labels(name, host.dtype.kind in "iu", host.shape, num_samples, str(host.dtype))
        if host.size:
            _check_label_range(name, int(host.min()), int(host.max()), num_classes)
        return backend.asarray(host.astype(np.int64), dtype=index_dtype)
    y, _ = to_backend(backend, y, name)
    _check_labels(name, xp.isdtype(y.dtype, "integral"), tuple(y.shape), num_samples, y.dtype)
    if y.dtype != index_dtype:
        y = xp.astype(y, index_dtype)  # unsigned dtypes lack min and max on some libraries
    if y.shape[0]:
        _check_label_range(name, int(xp.min(y)), int(xp.max(y)), num_classes)
    return y


def _check_labels(
    name: str, integral: bool, shape: tuple[int, ...], num_samples: int, dtype: object
) -> None:
    if not integral:
        raise ValueError(f"{name} must hold integer class labels, got dtype {dtype}")
    if len(shape) != 1 or shape[0] != num_samples:
        raise ValueError(
            f"{name} must have shape ({num_samples},), one label per row of "
            f"{'X_val' if name == 'y_val' else 'X'}, got shape {shape}"
        )


def _check_label_range(name: str, low: int, high: int, num_classes: int) -> None:
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{name}: labels must lie in [0, {num_classes}) for a network with {num_classes} "
            f"classes, got labels from {low} to {high}"
        )


def fits_in_memory(backend: Backend, elements: int, dtype: ArrayDType | str, what: str) -> None:
    """Raise ValueError if ``elements`` values of ``dtype`` cannot fit in the memory the
    backend's device has for this process (:meth:`xpnet.Backend.memory`).

    ``what`` names the cause in the message, such as ``"batch_size=10000000000"``.
    """
    needed = elements * _itemsize(dtype)
    memory = backend.memory()
    if memory is not None and needed > memory.bytes:
        raise ValueError(
            f"{what} needs {_bytes(needed)} for its arrays, more than the "
            f"{_bytes(memory.bytes)} that {backend} may take now ({memory.bound}); choose "
            "a smaller size"
        )


class Network(TypedDict):
    """A network's sizes, initialisation and seed, checked: what :func:`network` returns."""

    input_size: int
    hidden_size: int
    output_size: int
    init: Init
    std: float
    seed: int | None


def network(
    input_size: object, hidden_size: object, output_size: object, init: object, std: object,
    random_seed: object, dtype: str,
) -> Network:  # fmt: skip
    """Check a network's sizes, initialisation and seed; return them as plain Python values.

    Raises TypeError for a value of the wrong type, ValueError for one out of range or
    an ``std`` whose weights would overflow ``dtype``.
    """
    checked: Network = {
        "input_size": positive_int("input_size", input_size),
        "hidden_size": positive_int("hidden_size", hidden_size),
        "output_size": positive_int("output_size", output_size),
        "init": choice("init", init, INITS),
        "std": real("std", std, low=0.0, low_open=False),
        "seed": None if random_seed is None else seed(random_seed),
    }
    if checked["init"] == "gaussian":
        std_fits(checked["std"], dtype)
    return checked


def network_fits(backend: Backend, D: int, H: int, C: int) -> None:
    """Raise ValueError if a D-H-C network's weights cannot fit in memory: they are
    drawn in float64 on the host, then copied to the device."""
    fits_in_memory(backend, (D + C) * H, "float64", f"a {D}-{H}-{C} network (hidden_size={H})")


def std_fits(std: float, dtype: str) -> None:
    """Raise ValueError unless weights drawn as ``std * randn`` stay finite in ``dtype``
    through the forward pass, which multiplies two of them: ``std <= max ** (1 / 4)``."""
    largest = float(np.finfo(dtype).max) ** 0.25
    if std > largest:
        raise ValueError(
            f"std={std!r} makes the network's scores overflow {dtype} (its weights are "
            f"multiplied together); use std <= {largest:.3g} (the lab's is 1e-4)"
        )


def _itemsize(dtype: ArrayDType | str) -> int:
    return int(getattr(dtype, "itemsize", None) or np.dtype(str(dtype).split(".")[-1]).itemsize)


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"
