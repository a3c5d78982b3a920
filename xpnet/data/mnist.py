"""MNIST and Fashion-MNIST as arrays: the lab's ``read_data_sets`` and the raw sets.

The lab calls ``load_mnist.read_data_sets('mnist_data')``; with xpnet that is::

    from xpnet.data import mnist as load_mnist
    X_train, y_train, X_val, y_val, X_test, y_test = load_mnist.read_data_sets()

The split into training and validation images is :func:`read_data_sets`'s alone, the
lab's: the files' first :data:`NUM_VALIDATION` training images for validation, the
other ``TRAIN_ROWS`` for training.

Every function names the data directory ``data_dir`` (as ``--data-dir`` and
:mod:`xpnet.pipeline` do). :func:`read_data_sets` takes it first, positionally too, as
the lab's ``read_data_sets('mnist_data')``; the other functions take ``data_dir`` and
``dataset`` by keyword only. The datasets and where their files live are
:mod:`xpnet.data.datasets`'s; fetching and checking the files, :mod:`xpnet.data.store`'s.
This module gives their public names too, so that the lab's ``load_mnist`` has them all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xpnet.data.datasets import (
    DATASETS,
    IMAGE_SHAPE,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Dataset,
    PathLike,
    data_dir,
    directory_of,
    lookup,
)
from xpnet.data.idx import read_idx
from xpnet.data.store import check_files, fetch, identify, verify
from xpnet.errors import DataError

__all__ = [
    "DATASETS",
    "IMAGE_SHAPE",
    "NUM_VALIDATION",
    "TRAIN_ROWS",
    "Dataset",
    "check_files",
    "data_dir",
    "fetch",
    "identify",
    "load",
    "load_test",
    "read_data_sets",
    "verify",
]

#: The training images :func:`read_data_sets` holds out for validation by default: the
#: files' first 5,000, as the lab's reader (and TensorFlow's ``read_data_sets``) does.
NUM_VALIDATION = 5000
#: The training images it leaves for training, of the 60,000 of a dataset of the MNIST
#: layout: the files' images 5,000 to 59,999.
TRAIN_ROWS = 60_000 - NUM_VALIDATION


def load(
    *, data_dir: PathLike | None = None, dataset: str = "mnist", download: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the raw training and test sets.

    Returns
    -------
    X_train : numpy.ndarray of uint8, shape (60000, 28, 28)
    y_train : numpy.ndarray of uint8, shape (60000,)
    X_test : numpy.ndarray of uint8, shape (10000, 28, 28)
    y_test : numpy.ndarray of uint8, shape (10000,)

    Raises
    ------
    DataError
        If a file is missing (and ``download`` is False or fails), truncated or
        corrupt, or the images and labels do not match.
    """
    ds = lookup(dataset)
    directory = (
        fetch(data_dir=data_dir, dataset=dataset) if download else directory_of(ds, data_dir)
    )
    missing = [name for name in ds.sha256 if not (directory / name).is_file()]
    if missing:
        raise DataError(
            f"{ds.name} files missing from {directory}: {', '.join(missing)}; run `xpnet data` "
            f"to download them, or set {ds.env} to a directory that has them"
        )
    X_train, y_train = _read_pair(directory, TRAIN_IMAGES, TRAIN_LABELS)
    X_test, y_test = _read_pair(directory, TEST_IMAGES, TEST_LABELS)
    return X_train, y_train, X_test, y_test


def _read_pair(directory: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels, checked against each other."""
    X = read_idx(directory / images, expect_ndim=3)
    y = read_idx(directory / labels, expect_ndim=1)
    if X.dtype != np.uint8 or X.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{directory / images}: expected 28x28 uint8 images, got {X.shape}")
    if y.dtype != np.uint8 or y.shape[0] != X.shape[0]:
        raise DataError(
            f"{directory / labels}: expected {X.shape[0]:,} uint8 labels to match "
            f"{images}, got {y.shape[0]:,} of {y.dtype}"
        )
    if y.size and y.max() > 9:
        raise DataError(f"{directory / labels}: label {y.max()} is not a class 0..9")
    return X, y


def load_test(
    *, data_dir: PathLike | None = None, dataset: str = "mnist"
) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels alone, as :func:`read_data_sets` gives them.

    Returns
    -------
    X_test : numpy.ndarray of float32, shape (N, 28, 28, 1)
    y_test : numpy.ndarray of int64, shape (N,)

    Raises
    ------
    DataError
        If the files are missing, corrupt, or hold no images.
    """
    ds = lookup(dataset)
    directory = directory_of(ds, data_dir)
    X, y = _read_pair(directory, TEST_IMAGES, TEST_LABELS)
    if X.shape[0] == 0:
        raise DataError(f"{directory / TEST_IMAGES}: holds no {ds.name} test images")
    return X.astype(np.float32)[..., None], y.astype(np.int64)


def read_data_sets(
    data_dir: PathLike | None = None,
    *,
    dataset: str = "mnist",
    num_validation: int = NUM_VALIDATION,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lab's six arrays: training, validation and test images and labels.

    The 60,000 training images are split in the files' order, as the lab's reader
    (and TensorFlow's ``read_data_sets``) splits them: the first ``num_validation``
    for validation, the other ``60000 - num_validation`` for training. Image 0 of the
    training file is ``X_val[0]``, image ``num_validation`` is ``X_train[0]``.

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory; see :func:`data_dir` for where it is looked for. The
        only argument that may be passed positionally, as the lab's
        ``read_data_sets('mnist_data')``.
    dataset : {"mnist", "fashion-mnist"}
    num_validation : int, default 5000
        How many of the first training images to hold out for validation; 0 gives
        an empty validation set.
    download : bool, default True
        Download missing files.

    Returns
    -------
    X_train : numpy.ndarray of float32, shape (55000, 28, 28, 1)
        Pixel values 0..255.
    y_train : numpy.ndarray of int64, shape (55000,)
    X_val : numpy.ndarray of float32, shape (5000, 28, 28, 1)
    y_val : numpy.ndarray of int64, shape (5000,)
    X_test : numpy.ndarray of float32, shape (10000, 28, 28, 1)
    y_test : numpy.ndarray of int64, shape (10000,)
    """
    X_train, y_train, X_test, y_test = load(data_dir=data_dir, dataset=dataset, download=download)
    available = X_train.shape[0]
    if (
        isinstance(num_validation, bool)
        or not isinstance(num_validation, int)
        or not (0 <= num_validation < available)
    ):
        raise DataError(
            f"the {dataset} training file holds {available:,} images; num_validation="
            f"{num_validation!r} must leave at least one for training (0 <= num_validation "
            f"< {available:,})"
        )
    split = num_validation  # the first images validate, the rest train

    def images(X: np.ndarray) -> np.ndarray:
        return X.astype(np.float32)[..., None]

    def labels(y: np.ndarray) -> np.ndarray:
        return y.astype(np.int64)

    return (
        images(X_train[split:]),
        labels(y_train[split:]),
        images(X_train[:split]),
        labels(y_train[:split]),
        images(X_test),
        labels(y_test),
    )
