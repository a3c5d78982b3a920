"""The datasets of the MNIST layout that xpnet knows, and where their files live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from xpnet._wording import on_command_line, setting

__all__ = [
    "DATASETS",
    "FASHION_CLASSES",
    "IMAGE_SHAPE",
    "TEST_IMAGES",
    "TEST_LABELS",
    "TRAIN_IMAGES",
    "TRAIN_LABELS",
    "Dataset",
    "PathLike",
    "data_dir",
    "directory_of",
    "fetch_hint",
    "lookup",
    "named_by",
]

#: A directory given by the caller.
PathLike = str | os.PathLike[str]

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


def lookup(name: str) -> Dataset:
    """The dataset called ``name``.

    Raises
    ------
    ValueError
        If xpnet knows no dataset of that name; the message lists those it knows.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}") from None


def data_dir(*, data_dir: PathLike | None = None, dataset: str = "mnist") -> Path:
    """The directory that holds (or will hold) a dataset's files.

    In order: ``data_dir`` if given; else the dataset's environment variable
    (``XPNET_DATA`` for MNIST, ``XPNET_FASHION_DATA`` for Fashion-MNIST); else a
    system directory that has the files (``/usr/share/datasets/fashion-mnist``);
    else the platform's cache, ``platformdirs.user_cache_dir("xpnet")/<dataset>``:
    ``~/.cache/xpnet/<dataset>`` (or ``$XDG_CACHE_HOME/xpnet/<dataset>``) on Linux,
    ``~/Library/Caches/xpnet/<dataset>`` on macOS,
    ``%LOCALAPPDATA%\\xpnet\\xpnet\\Cache\\<dataset>`` on Windows.
    """
    return directory_of(lookup(dataset), data_dir)


def directory_of(ds: Dataset, given: PathLike | None) -> Path:
    """:func:`data_dir` for a known dataset."""
    if given is not None:
        return Path(given)
    if os.environ.get(ds.env):
        return Path(os.environ[ds.env])
    for system_dir in map(Path, ds.system_dirs):
        if all((system_dir / name).is_file() for name in ds.sha256):
            return system_dir
    return Path(platformdirs.user_cache_dir("xpnet")) / ds.name


#: Whether messages are for the ``xpnet`` command (its options) or for Python (arguments).
def named_by(ds: Dataset, given: PathLike | None) -> str | None:
    """Which setting named the data directory: ``data_dir`` (``--data-dir`` on the command
    line), the environment, or none."""
    if given is not None:
        return setting("data_dir")
    return ds.env if os.environ.get(ds.env) else None


def fetch_hint(ds: Dataset) -> str:
    """How to download a dataset's files, in the words of the caller (Python or the command
    line): ``xpnet.data.fetch(dataset='mnist')`` or ``xpnet data --dataset mnist``."""
    if on_command_line():
        return f"`xpnet data --dataset {ds.name}`"
    return f"xpnet.data.fetch(dataset={ds.name!r})"
