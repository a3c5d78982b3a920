"""Accuracy and confusion matrices."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.metrics import accuracy, confusion_matrix


def test_accuracy_is_a_0d_array_of_the_inputs_library(backend):
    y_true = backend.asarray(np.array([0, 0, 1, 2, 2, 2]))
    y_pred = backend.asarray(np.array([0, 1, 1, 2, 0, 2]))
    result = accuracy(backend.xp, y_true, y_pred)
    assert backend.owns(result)
    assert result.shape == ()
    assert float(result) == pytest.approx(4 / 6)


def test_confusion_counts_each_pair_from_any_backend(backend):
    y_true = backend.asarray(np.array([0, 0, 1, 2, 2, 2]))
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 3), [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    )


def test_confusion_refuses_labels_beyond_the_classes():
    with pytest.raises(ValueError, match=r"true labels range from 0 to 9, outside the 3 classes"):
        confusion_matrix(np.arange(10), np.zeros(10, dtype=int), 3)
