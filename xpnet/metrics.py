"""Accuracy and the confusion matrix, on host arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.backend import to_numpy

__all__ = ["accuracy", "confusion_matrix"]


def accuracy(y_true: Any, y_pred: Any) -> float:
    """The fraction of labels predicted correctly; arrays of any backend, shape (N,)."""
    return float(np.mean(to_numpy(y_true) == to_numpy(y_pred)))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count of each (true, predicted) pair.

    Returns
    -------
    numpy.ndarray of int64, shape (num_classes, num_classes)
        Entry ``[i, j]`` counts samples of class ``i`` predicted as ``j``.
    """
    y_true, y_pred = to_numpy(y_true).astype(np.int64), to_numpy(y_pred).astype(np.int64)
    return np.bincount(num_classes * y_true + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
