"""Turning images into the rows the network takes."""

from __future__ import annotations

import numpy as np

__all__ = ["PREPROCESSORS", "subtract_mean_image"]


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


#: Preprocessing by name, as recorded in model files.
PREPROCESSORS = {"subtract_mean_image": subtract_mean_image}
