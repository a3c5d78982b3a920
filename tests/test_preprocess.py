"""Preprocessing: the lab's mean-image subtraction, and the fast recipe's scaling."""

from __future__ import annotations

import numpy as np

from xpnet.preprocess import scale_and_center, subtract_mean_image


def test_subtract_mean_image_centres_on_the_training_mean():
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (20, 4, 4, 1)).astype(np.float32), np.zeros((3, 4, 4, 1))
    rows_train, rows_test = subtract_mean_image(train, test)
    assert rows_train.shape == (20, 16)
    np.testing.assert_allclose(rows_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(rows_test[0], -train.mean(axis=0).ravel(), rtol=1e-6)


def test_scale_and_center_gives_float32_rows_of_order_one():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 4, 4, 1)).astype(np.float32)
    rows_train, rows_test = scale_and_center(train, train[:2].copy())
    assert rows_train.dtype == np.float32
    np.testing.assert_allclose(rows_train.mean(axis=0), 0, atol=1e-6)
    assert np.abs(rows_train).max() <= 1.0
    np.testing.assert_allclose(rows_test, rows_train[:2])
