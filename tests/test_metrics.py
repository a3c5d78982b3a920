"""Accuracy and confusion matrices."""

from __future__ import annotations

import numpy as np

from xpnet import resolve_backend
from xpnet.metrics import accuracy, confusion_matrix


def test_accuracy_and_confusion(backend):
    b = resolve_backend(backend)
    y_true = b.asarray(np.array([0, 0, 1, 2, 2, 2]))
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    assert accuracy(y_true, y_pred) == 4 / 6
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 3), [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    )
