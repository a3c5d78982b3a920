"""MNIST and Fashion-MNIST: where the files live, fetching them, reading them.

The lab calls ``load_mnist.read_data_sets('mnist_data')``; with xpnet that is::

    from xpnet.data import mnist as load_mnist
    X_train, y_train, X_val, y_val, X_test, y_test = load_mnist.read_data_sets()

Every function names the data directory ``data_dir`` (as ``--data-dir`` and
:mod:`xpnet.pipeline` do). :func:`read_data_sets` takes it first, positionally too, as
the lab's ``read_data_sets('mnist_data')``; the other functions take ``data_dir`` and
``dataset`` by keyword only. Their old spellings, ``path=`` (``directory=`` for
:func:`check_test_files`) and ``(dataset, path)`` positionally, still work until xpnet
0.2, with an :class:`~xpnet.errors.XpnetDeprecationWarning`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np

from xpnet._deprecation import warn_renamed
from xpnet.data.download import download, payload_sha256
from xpnet.data.idx import read_idx
from xpnet.errors import DataError

__all__ = [
    "DATASETS",
    "IMAGE_SHAPE",
    "Dataset",
    "check_test_files",
    "data_dir",
    "fetch",
    "identify",
    "load",
    "load_test",
    "read_data_sets",
    "verify",
]

#: Fashion-MNIST's ten garments, by label.
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
#: The height and width of every image of the MNIST layout.
IMAGE_SHAPE = (28, 28)
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


@dataclass(frozen=True)
class Dataset:
    """A dataset in the MNIST layout: four IDX files, 60,000 + 10,000 28x28 images.

    Attributes
    ----------
    name : str
        ``"mnist"`` or ``"fashion-mnist"``.
    sha256 : dict of str to str
        SHA-256 of each file's uncompressed payload.
    mirrors : tuple of str
        Base URLs to download from, in order.
    env : str
        The environment variable naming a directory that holds the files.
    class_names : tuple of str
        What each label means, for plots and tables.
    system_dirs : tuple of str
        Directories where an operating-system package puts the files.
    """

    name: str
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    env: str
    class_names: tuple[str, ...]
    system_dirs: tuple[str, ...] = ()


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        # The published uncompressed files of Yann LeCun and Corinna Cortes (CC BY-SA 3.0).
        sha256={
            TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        env="XPNET_DATA",
        class_names=tuple(str(digit) for digit in range(10)),
    ),
    "fashion-mnist": Dataset(
        name="fashion-mnist",
        # Zalando Research's Fashion-MNIST (MIT), as Debian's dataset-fashion-mnist ships it.
        sha256={
            TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        env="XPNET_FASHION_DATA",
        class_names=FASHION_CLASSES,
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def _dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}") from None


def _has_files(directory: Path, dataset: Dataset) -> bool:
    return all((directory / name).is_file() for name in dataset.sha256)


_P = ParamSpec("_P")
_R = TypeVar("_R")
_PathLike = str | os.PathLike[str]


def _old_spellings(
    old_name: str = "path", *, old_order: bool = True
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Accept, until xpnet 0.2 and with a warning, the spellings from before ``data_dir``:
    the directory as ``old_name=...``, and (with ``old_order``, for a function whose
    arguments are now keyword-only) ``(dataset, path)`` passed positionally."""

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        name = function.__name__

        @functools.wraps(function)
        def accept_old(*args: Any, **kwargs: Any) -> _R:
            if old_name in kwargs:
                if "data_dir" in kwargs:
                    raise TypeError(
                        f"{name}() got data_dir and its old name {old_name}; pass data_dir only"
                    )
                warn_renamed(f"{name}({old_name}=...)", f"{name}(data_dir=...)")
                kwargs["data_dir"] = kwargs.pop(old_name)
            if args and old_order:
                if len(args) > 2 or not isinstance(args[0], str):
                    raise TypeError(
                        f"{name}() takes keyword arguments only: {name}(data_dir=..., dataset=...)"
                    )
                named = ("dataset", "data_dir")[: len(args)]
                twice = [key for key in named if key in kwargs]
                if twice:
                    raise TypeError(f"{name}() got {twice[0]} positionally and by keyword")
                warn_renamed(
                    f"{name}(dataset, {old_name}) with positional arguments",
                    f"{name}(data_dir=..., dataset=...) by keyword",
                )
                kwargs.update(zip(named, args, strict=True))
                args = ()
            return function(*args, **kwargs)

        return cast(Callable[_P, _R], accept_old)

    return decorate


@_old_spellings()
def data_dir(*, data_dir: _PathLike | None = None, dataset: str = "mnist") -> Path:
    """The directory that holds (or will hold) a dataset's files.

    In order: ``data_dir`` if given; else the dataset's environment variable
    (``XPNET_DATA`` for MNIST, ``XPNET_FASHION_DATA`` for Fashion-MNIST); else a
    system directory that has the files (``/usr/share/datasets/fashion-mnist``);
    else the cache, ``$XDG_CACHE_HOME/xpnet/<dataset>`` (``~/.cache/xpnet/<dataset>``).
    """
    return _directory(_dataset(dataset), data_dir)


def _directory(ds: Dataset, given: _PathLike | None) -> Path:
    """:func:`data_dir` for a known dataset."""
    if given is not None:
        return Path(given)
    if os.environ.get(ds.env):
        return Path(os.environ[ds.env])
    for system_dir in map(Path, ds.system_dirs):
        if _has_files(system_dir, ds):
            return system_dir
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "xpnet" / ds.name


@_old_spellings()
def fetch(
    *, data_dir: _PathLike | None = None, dataset: str = "mnist", progress: bool = True
) -> Path:
    """Make sure a dataset's four files are present, downloading the missing ones.

    Files are downloaded into a directory the user named (``data_dir``, or the
    dataset's environment variable) only if it exists; xpnet creates no directory
    but its own cache.

    Returns
    -------
    pathlib.Path
        The data directory (see :func:`data_dir`).

    Raises
    ------
    DataError
        If a user-named directory does not exist, or a missing file cannot be
        downloaded and verified; the message says where the files belong.
    """
    ds = _dataset(dataset)
    directory = _directory(ds, data_dir)
    named_by = _named_by(ds, data_dir)
    missing = [name for name in ds.sha256 if not (directory / name).is_file()]
    if missing and named_by and not directory.is_dir():
        raise DataError(
            f"the {ds.name} data directory {directory} (from {named_by}) does not exist; "
            f"create it, or fix {named_by}"
        )
    for name in missing:
        try:
            download(name, ds.mirrors, directory / name, ds.sha256[name], progress=progress)
        except DataError as err:
            raise DataError(
                f"{err} The {ds.name} files belong in {directory}"
                + (f" (from {named_by})" if named_by else "")
                + f". Without a network, copy the four ({', '.join(ds.sha256)}) there from "
                f"a machine that has one ({ds.mirrors[0]}, or its `xpnet data`), or point "
                f"{ds.env} or --data-dir at a directory that has them."
            ) from None
    return directory


def _named_by(ds: Dataset, given: _PathLike | None) -> str | None:
    """Which setting named the data directory: --data-dir, the environment, or none."""
    if given is not None:
        return "--data-dir"
    return ds.env if os.environ.get(ds.env) else None


@_old_spellings()
def verify(*, data_dir: _PathLike | None = None, dataset: str = "mnist") -> dict[str, bool]:
    """Check each file's payload against its known SHA-256.

    Returns
    -------
    dict of str to bool
        For each of the four files, whether it is present and matches.
    """
    owners = identify(data_dir=data_dir, dataset=dataset)
    return {name: owner == dataset for name, owner in owners.items()}


@_old_spellings()
def identify(*, data_dir: _PathLike | None = None, dataset: str = "mnist") -> dict[str, str | None]:
    """Which dataset each of the four files in ``dataset``'s directory belongs to.

    Returns
    -------
    dict of str to str or None
        For each file name, the dataset whose known SHA-256 its payload has
        (``dataset`` itself when it verifies), or None when it is missing or no
        known dataset's.
    """
    directory = _directory(_dataset(dataset), data_dir)
    return {
        name: _owner(name, payload_sha256(directory / name))
        if (directory / name).is_file()
        else None
        for name in DATASETS[dataset].sha256
    }


def _owner(name: str, sha256: str) -> str | None:
    """The dataset whose file ``name`` has this SHA-256, if any."""
    return next((d.name for d in DATASETS.values() if d.sha256.get(name) == sha256), None)


@_old_spellings()
def load(
    *, data_dir: _PathLike | None = None, dataset: str = "mnist", download: bool = True
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
    ds = _dataset(dataset)
    directory = fetch(data_dir=data_dir, dataset=dataset) if download else _directory(ds, data_dir)
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


@_old_spellings("directory")
def check_test_files(*, data_dir: _PathLike, dataset: str) -> None:
    """Check that the test files in ``data_dir`` are ``dataset``'s, by their SHA-256.

    Raises
    ------
    DataError
        If a test file is missing, or is another dataset's (named when known) or
        no known dataset's.
    """
    ds = _dataset(dataset)
    directory = Path(data_dir)
    for name in (TEST_IMAGES, TEST_LABELS):
        if not (directory / name).is_file():
            raise DataError(
                f"{ds.name} test file {name} is missing from {directory}; run "
                f"`xpnet data --dataset {ds.name}` or set {ds.env}"
            )
        owner = _owner(name, payload_sha256(directory / name))
        if owner == ds.name:
            continue
        raise DataError(
            f"{directory / name} is "
            + (f"{owner}'s, not {ds.name}'s" if owner else f"not {ds.name}'s (its SHA-256 differs)")
            + f": point --data-dir (or {ds.env}) at the {ds.name} files"
        )


@_old_spellings()
def load_test(
    *, data_dir: _PathLike | None = None, dataset: str = "mnist"
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
    ds = _dataset(dataset)
    directory = _directory(ds, data_dir)
    X, y = _read_pair(directory, TEST_IMAGES, TEST_LABELS)
    if X.shape[0] == 0:
        raise DataError(f"{directory / TEST_IMAGES}: holds no {ds.name} test images")
    return X.astype(np.float32)[..., None], y.astype(np.int64)


@_old_spellings(old_order=False)
def read_data_sets(
    data_dir: _PathLike | None = None,
    *,
    dataset: str = "mnist",
    num_validation: int = 5000,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lab's six arrays: training, validation and test images and labels.

    The 60,000 training images are split in the files' order: the first
    ``60000 - num_validation`` for training, the rest for validation.

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory; see :func:`data_dir` for where it is looked for. The
        only argument that may be passed positionally, as the lab's
        ``read_data_sets('mnist_data')``.
    dataset : {"mnist", "fashion-mnist"}
    num_validation : int, default 5000
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
    split = X_train.shape[0] - num_validation

    def images(X: np.ndarray) -> np.ndarray:
        return X.astype(np.float32)[..., None]

    def labels(y: np.ndarray) -> np.ndarray:
        return y.astype(np.int64)

    return (
        images(X_train[:split]),
        labels(y_train[:split]),
        images(X_train[split:]),
        labels(y_train[split:]),
        images(X_test),
        labels(y_test),
    )
