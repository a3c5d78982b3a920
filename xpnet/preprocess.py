"""Turning images into the rows the network takes."""

from __future__ import annotations

import numpy as np

__all__ = ["PREPROCESSORS", "scale_and_center", "subtract_mean_image"]


def subtract_mean_image(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """The lab's preprocessing: subtract the training set's mean image, reshape to rows.

    Parameters
    ----------
    X_train : numpy.ndarray, shape (N, ...)
        Training images; their mean is subtracted from every set.
    *others : numpy.ndarray, shape (M, ...)
        Validation or test images.

    Returns
    -------
    list of numpy.ndarray, shapes (N, D), (M, D), ...
        ``X_train`` then each of ``others``, as rows of ``D`` pixels.
    """
    mean_image = np.mean(X_train, axis=0)
    return [(X - mean_image).reshape(X.shape[0], -1) for X in (X_train, *others)]


def scale_and_center(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale pixels from 0..255 to 0..1, subtract the training mean, reshape to rows.

    The inputs of the fast recipe (:mod:`xpnet.recipes`): features of order 1 suit
    He initialisation and a learning rate of order 0.1.

    Returns
    -------
    list of numpy.ndarray of float32, shapes (N, D), (M, D), ...
    """
    scale = np.float32(1 / 255)
    rows = [
        (X * scale).reshape(X.shape[0], -1).astype(np.float32, copy=False)
        for X in (X_train, *others)
    ]
    mean = rows[0].mean(axis=0)
    for X in rows:
        X -= mean
    return rows


#: Preprocessing by name, as recorded in model files.
PREPROCESSORS = {"subtract_mean_image": subtract_mean_image, "scale_and_center": scale_and_center}
