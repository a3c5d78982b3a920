"""Accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np

from xpnet._typing import Array, Namespace
from xpnet.backend import device_of, to_numpy

__all__ = ["accuracy", "confusion_matrix"]


def accuracy(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """The fraction of labels predicted correctly.

    Parameters
    ----------
    xp : module
        The Array API namespace of the labels (``numpy`` for NumPy arrays).
    y_true, y_pred : array of int, shape (N,)
        Arrays of that library, on one device.

    Returns
    -------
    array, shape ()
        A 0-d floating array of that library on that device, computed without
        waiting for it; ``float(accuracy(...))`` reads it. In float64 where the
        device has it, else float32.
    """
    dtypes = xp.__array_namespace_info__().dtypes(device=device_of(y_true), kind="real floating")
    dtype = dtypes.get("float64", dtypes.get("float32"))
    return xp.mean(xp.astype(y_true == y_pred, dtype))


def confusion_matrix(y_true: Array, y_pred: Array, num_classes: int) -> np.ndarray:
    """Count of each (true, predicted) pair.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
        Labels in [0, num_classes), arrays of any backend.
    num_classes : int

    Returns
    -------
    numpy.ndarray of int64, shape (num_classes, num_classes)
        Entry ``[i, j]`` counts samples of class ``i`` predicted as ``j``.

    Raises
    ------
    ValueError
        If a label lies outside [0, num_classes).
    """
    y_true, y_pred = to_numpy(y_true).astype(np.int64), to_numpy(y_pred).astype(np.int64)
    for name, y in (("true", y_true), ("predicted", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"{name} labels range from {y.min()} to {y.max()}, outside the "
                f"{num_classes} classes [0, {num_classes})"
            )
    return np.bincount(num_classes * y_true + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
