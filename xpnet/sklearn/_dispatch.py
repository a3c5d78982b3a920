"""Where the estimator's arrays live: scikit-learn's array API dispatch, and the backend.

Under ``sklearn.set_config(array_api_dispatch=True)``, input of an array library other
than NumPy trains on that library and device, and ``predict`` must then be given input
of the same library and device; NumPy input (and array-likes: lists, DataFrames) trains
on the estimator's ``backend`` and answers in NumPy. Here are those decisions, made
once at the edge, and the labels' way to and from class indices.
"""

from __future__ import annotations

import numpy as np

from xpnet._typing import Array, ArrayLike, Device, Namespace
from xpnet.backend import (
    Backend,
    array_namespace,
    device_of,
    is_array_api_obj,
    is_numpy_array,
    resolve_backend,
    to_numpy,
)

__all__ = [
    "backend_for",
    "check_same_place",
    "class_indices",
    "class_labels",
    "classes_of",
    "is_host",
    "namespace",
    "refuse_complex",
]


def is_host(X: ArrayLike) -> bool:
    """Whether ``X`` is NumPy or array-like (a list, a DataFrame), not another library's."""
    return is_numpy_array(X) or not is_array_api_obj(X)


def dispatching() -> bool:
    """Whether scikit-learn's array API dispatch is on."""
    import sklearn  # scikit-learn itself: imports are absolute

    return bool(sklearn.get_config()["array_api_dispatch"])


def namespace(X: ArrayLike) -> Namespace:
    """X's namespace under array API dispatch (NumPy's otherwise, as scikit-learn does)."""
    if dispatching() and not is_host(X):
        return array_namespace(X)
    return np


def backend_for(X: Array, backend: str, device: Device | None) -> Backend:
    """Where ``X`` trains: NumPy input on ``backend`` and ``device``, another library's
    on its own library and device."""
    if is_numpy_array(X):
        return resolve_backend(backend, device)
    return resolve_backend(array_namespace(X), device_of(X))


def refuse_complex(X: ArrayLike) -> None:
    """Complex input is refused on every backend, as scikit-learn refuses it in NumPy:
    a conversion to float would silently drop the imaginary part."""
    if is_host(X):
        return  # scikit-learn's own validation refuses complex NumPy input
    dtype = X.dtype
    if array_namespace(X).isdtype(dtype, "complex floating"):
        raise ValueError(f"Complex data not supported: X has dtype {dtype}; pass X.real")


def check_same_place(X: ArrayLike, backend: Backend, host_input: bool, caller: str) -> None:
    """Under dispatch, refuse ``X``, given to ``caller`` (``"Class.method"``), unless it is
    of the library and device the estimator was fitted on (``host_input``: NumPy or
    array-likes), as scikit-learn's own estimators do."""
    if not dispatching():
        return
    same = is_host(X) if host_input else not is_host(X) and backend.owns(X) and backend.holds(X)
    if not same:
        fitted = "host (NumPy) arrays" if host_input else str(backend)
        raise ValueError(
            f"Inputs passed to {caller}() must use the same namespace and the same device "
            f"as those passed to fit() ({fitted}); got "
            f"{type(X).__module__}.{type(X).__name__}. Move X there, or refit."
        )


def classes_of(y: ArrayLike) -> np.ndarray:
    """The distinct labels of ``y`` (N,), sorted, on the host: shape (C,)."""
    return np.unique(to_numpy(np.asarray(y) if isinstance(y, list | tuple) else y))


def class_indices(classes: np.ndarray, y: Array, backend: Backend) -> Array:
    """Labels ``y`` (N,) as indices 0..C-1 into ``classes`` (C,), on ``backend``'s device.

    Raises ValueError for a label that is not among ``classes``.
    """
    host = to_numpy(y)
    indices = np.searchsorted(classes, host)
    known = (indices < len(classes)) & (classes[np.minimum(indices, len(classes) - 1)] == host)
    if not np.all(known):
        raise ValueError(
            f"y has labels {np.unique(host[~known])[:5]!r} not among classes_ {classes!r}"
        )
    return backend.asarray(indices)


def class_labels(classes: np.ndarray, indices: Array) -> Array:
    """Class indices (N,) as labels from ``classes`` (C,): in the indices' namespace and
    device where the classes are numbers; a NumPy array for classes such as strings,
    which other libraries cannot hold."""
    if is_numpy_array(indices) or classes.dtype.kind not in "biuf":
        return classes[to_numpy(indices)]
    xp = array_namespace(indices)
    return xp.take(xp.asarray(classes, device=device_of(indices)), indices, axis=0)
