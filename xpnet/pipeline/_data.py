"""A dataset read and preprocessed for the network: :class:`PreparedData`."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from xpnet import _checks
from xpnet._wording import setting
from xpnet.data import mnist
from xpnet.data.mnist import TRAIN_ROWS
from xpnet.errors import DataError
from xpnet.preprocess import Preprocessing, fit_preprocessing

__all__ = ["TRAIN_ROWS", "PreparedData", "prepare_data"]


@dataclass(frozen=True)
class PreparedData:
    """A dataset's six arrays as network rows, and how they were made.

    Attributes
    ----------
    X_train, X_val, X_test : numpy.ndarray of float32, shapes (N, D)
    y_train, y_val, y_test : numpy.ndarray of int64, shapes (N,)
    preprocessing : Preprocessing
        Fitted on the training images; applies to any images of the dataset.
    dataset : str
    num_classes : int
        From the labels: the largest label plus one.
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    preprocessing: Preprocessing
    dataset: str
    num_classes: int

    def first(self, train_size: int | None) -> PreparedData:
        """The data with only the first ``train_size`` training rows (None: all of them);
        the preprocessing stays the one fitted on all, as ``xpnet tune --train-size``
        and ``xpnet train --train-size`` train.

        Raises
        ------
        TypeError, ValueError
            If ``train_size`` is not an integer of at least 2.
        xpnet.errors.DataError
            If it exceeds the training rows.
        """
        if train_size is None:
            return self
        train_size = _checks.positive_int(setting("train_size"), train_size)
        if train_size < 2:
            raise ValueError(f"{setting('train_size')} must be at least 2, got {train_size!r}")
        rows = self.X_train.shape[0]
        if train_size > rows:
            raise DataError(
                f"train_size {train_size:,} exceeds the {rows:,} training images of "
                f"{self.dataset} (the rest are kept for validation): give at most {rows:,}, "
                "or leave it out to train on them all"
            )
        return dataclasses.replace(
            self, X_train=self.X_train[:train_size], y_train=self.y_train[:train_size]
        )

    def check_preprocessing(self, name: str) -> None:
        """Refuse a run that wants another preprocessing than the data's: before any
        network is built.

        Raises
        ------
        ValueError
            If the data was prepared with a preprocessing other than ``name``.
        """
        if self.preprocessing.name != name:
            raise ValueError(
                f"data was prepared with {self.preprocessing.name!r}, the recipe wants "
                f"{name!r}: prepare it with prepare_data({name!r}), or give the recipe "
                f"preprocessing={self.preprocessing.name!r}"
            )


def prepare_data(
    preprocessing: str = "subtract_mean_image",
    *,
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
) -> PreparedData:
    """Read a dataset (downloading it if needed) and preprocess it for the network.

    The six arrays are :func:`xpnet.data.read_data_sets`'s, split as it splits them
    (the first 5,000 training images for validation, the other :data:`TRAIN_ROWS`
    for training); the preprocessing is fitted on the training rows.

    The four files must be the dataset's (checked by their SHA-256, as
    :func:`xpnet.pipeline.evaluate` checks the test files), so that a run records the
    dataset it trained on.

    Raises
    ------
    DataError
        If the files are missing and cannot be downloaded, are corrupt, or are not
        ``dataset``'s (another dataset's are named as such).
    ValueError
        For an unknown preprocessing or dataset.
    """
    directory = mnist.fetch(data_dir=data_dir, dataset=dataset)
    mnist.check_files(data_dir=directory, dataset=dataset)
    X_train, y_train, X_val, y_val, X_test, y_test = mnist.read_data_sets(
        directory, dataset=dataset, download=False
    )
    fitted = fit_preprocessing(preprocessing, X_train)
    labels = [y for y in (y_train, y_val, y_test) if y.size]
    return PreparedData(
        fitted(X_train), y_train, fitted(X_val), y_val, fitted(X_test), y_test,
        preprocessing=fitted,
        dataset=dataset,
        num_classes=int(max(int(y.max()) for y in labels)) + 1,
    )  # fmt: skip
