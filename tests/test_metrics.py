"""Accuracy, confusion matrices and the classification report."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.backend import to_numpy
from xpnet.data import DATASETS
from xpnet.metrics import accuracy, class_scores, classification_report, confusion_matrix


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


#: Labels where class 3 is never predicted and class 4 is absent (ratios of nothing).
Y_TRUE = np.array([0, 0, 1, 2, 2, 2, 3, 3, 1, 0])
Y_PRED = np.array([0, 1, 1, 2, 0, 2, 2, 0, 1, 0])


def test_class_scores_count_by_hand_on_any_backend(backend):
    scores = class_scores(backend.xp, backend.asarray(Y_TRUE), backend.asarray(Y_PRED), 5)
    assert all(backend.owns(score) for score in scores)
    # class 0: 3 true, 4 predicted, 2 right; 1: 2 true, 3 predicted, 2 right;
    # 2: 3 true, 3 predicted, 2 right; 3: 2 true, none predicted; 4: none at all
    np.testing.assert_allclose(to_numpy(scores.precision), [2 / 4, 2 / 3, 2 / 3, 0, 0])
    np.testing.assert_allclose(to_numpy(scores.recall), [2 / 3, 2 / 2, 2 / 3, 0, 0])
    np.testing.assert_allclose(to_numpy(scores.f1), [4 / 7, 4 / 5, 4 / 6, 0, 0])
    np.testing.assert_array_equal(to_numpy(scores.support), [3, 2, 3, 2, 0])


def test_the_classification_report_is_scikit_learns():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 10, 2000)
    y_pred = np.where(rng.random(2000) < 0.8, y_true, rng.integers(0, 10, 2000))
    y_pred[y_pred == 3] = 4  # a class never predicted
    for names in ([str(c) for c in range(10)], DATASETS["fashion-mnist"].class_names):
        expected = sklearn_metrics.classification_report(
            y_true, y_pred, labels=range(10), target_names=names, digits=4, zero_division=0
        )
        assert classification_report(y_true, y_pred, names) == expected
