"""Accuracy, the confusion matrix, and each class's precision, recall and F1 (the
classification report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from xpnet._typing import Array, ArrayDType, Namespace
from xpnet.backend import device_of, to_numpy

__all__ = [
    "ClassScores",
    "accuracy",
    "class_scores",
    "classification_report",
    "confusion_matrix",
]


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
    return xp.mean(xp.astype(y_true == y_pred, _float_dtype(xp, y_true)))


def _float_dtype(xp: Namespace, x: Array) -> ArrayDType:
    """float64 where ``x``'s device has it, else float32."""
    dtypes = xp.__array_namespace_info__().dtypes(device=device_of(x), kind="real floating")
    return dtypes.get("float64", dtypes.get("float32"))


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


class ClassScores(NamedTuple):
    """Each class's scores (:func:`class_scores`), arrays of shape (C,) of one library."""

    precision: Array
    recall: Array
    f1: Array
    support: Array


def class_scores(xp: Namespace, y_true: Array, y_pred: Array, num_classes: int) -> ClassScores:
    """Each class's precision, recall, F1 score and support.

    Precision is the fraction of the images read as the class that are of it; recall,
    the fraction of the images of the class read as it; F1, their harmonic mean,
    ``2 tp / (2 tp + fp + fn)``; support, the images of the class. A ratio of nothing
    (a class never predicted, or absent) is 0, as scikit-learn gives it.

    Parameters
    ----------
    xp : module
        The Array API namespace of the labels.
    y_true, y_pred : array of int, shape (N,)
        Labels in [0, num_classes), arrays of that library on one device.
    num_classes : int

    Returns
    -------
    ClassScores
        ``precision``, ``recall``, ``f1`` (floating, as :func:`accuracy`'s) and
        ``support`` (integer), each of shape (num_classes,).
    """
    classes = xp.arange(num_classes, device=device_of(y_true))
    is_true = y_true[:, None] == classes  # (N, C): one-hot by broadcasting
    is_pred = y_pred[:, None] == classes
    dtype = _float_dtype(xp, y_true)
    tp = xp.sum(xp.astype(is_true & is_pred, dtype), axis=0)
    support = xp.sum(xp.astype(is_true, dtype), axis=0)
    predicted = xp.sum(xp.astype(is_pred, dtype), axis=0)

    def ratio(numerator: Array, denominator: Array) -> Array:
        some = denominator > 0
        return xp.where(some, numerator / xp.where(some, denominator, xp.ones_like(denominator)),
                        xp.zeros_like(numerator))  # fmt: skip

    return ClassScores(
        ratio(tp, predicted),
        ratio(tp, support),
        ratio(2 * tp, support + predicted),
        xp.astype(support, xp.int64),
    )


def classification_report(
    y_true: Array, y_pred: Array, class_names: Sequence[str], digits: int = 4
) -> str:
    """Each class's precision, recall, F1 and support, then the accuracy and the macro
    and support-weighted averages, as text laid out as
    ``sklearn.metrics.classification_report`` lays it out.

    Parameters
    ----------
    y_true, y_pred : numpy.ndarray of int, shape (N,)
        Labels in [0, C).
    class_names : sequence of str, length C
    digits : int
        Digits after the point.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = class_scores(np, y_true, y_pred, len(class_names))
    total = int(np.sum(scores.support))
    per_class = np.stack(scores[:3], axis=1)  # (C, 3)
    averages = {
        "macro avg": per_class.mean(axis=0),
        "weighted avg": scores.support @ per_class / max(total, 1),
    }
    width = max(*(len(name) for name in class_names), len("weighted avg"), digits)
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    text = ("{:>{width}s} " + " {:>9}" * 4).format(
        "", "precision", "recall", "f1-score", "support", width=width
    ) + "\n\n"
    for name, values, support in zip(class_names, per_class, scores.support, strict=True):
        text += row.format(name, *values, support, width=width, digits=digits)
    text += "\n" + ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
        "accuracy", "", "", float(accuracy(np, y_true, y_pred)), total, width=width,
        digits=digits,
    )  # fmt: skip
    for name, values in averages.items():
        text += row.format(name, *values, total, width=width, digits=digits)
    return text
