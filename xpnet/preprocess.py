"""Turning images into the rows the network takes, and remembering how.

A :class:`Preprocessing` is fitted on the training images and then applied to any
images: ``rows = reshape(images, (N, D)) * scale - mean``. It is saved in model
files, so a model evaluates raw images with nothing but its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from xpnet._typing import JSON, Array, Namespace
from xpnet.backend import array_namespace, device_of

__all__ = [
    "PREPROCESSINGS",
    "PREPROCESSORS",
    "Preprocessing",
    "check_fitted",
    "fit_preprocessing",
    "scale_and_center",
    "subtract_mean_image",
]

PreprocessingName = Literal["subtract_mean_image", "scale_and_center"]
#: The preprocessings by name: the lab's, and the fast recipe's.
PREPROCESSINGS: tuple[PreprocessingName, ...] = get_args(PreprocessingName)
#: Pixel scale of each: the lab's keeps 0..255; the fast recipe scales to 0..1.
_SCALES = {"subtract_mean_image": 1.0, "scale_and_center": float(np.float32(1 / 255))}
#: The largest pixel value of the images they are fitted on (8-bit grey levels).
_MAX_PIXEL = 255


@dataclass(frozen=True)
class Preprocessing:
    """Images to rows: ``rows = reshape(images, (N, D)) * scale - mean``, in float32.

    Attributes
    ----------
    name : {"subtract_mean_image", "scale_and_center"}
        How it was fitted.
    scale : float
        The factor applied to pixel values (1 for the lab's, 1/255 for the fast recipe's).
    mean : numpy.ndarray of float32, shape (D,)
        The mean training row after scaling, subtracted from every row.
    """

    name: str
    scale: float
    mean: np.ndarray = field(repr=False)

    @property
    def input_size(self) -> int:
        """D, the number of values in an image."""
        return int(self.mean.shape[0])

    def __call__(self, images: npt.ArrayLike) -> np.ndarray:
        """Rows of the network's input from images (N, ...) with D values each.

        Returns
        -------
        numpy.ndarray of float32, shape (N, D)

        Raises
        ------
        ValueError
            If the images do not hold D values each.
        """
        images = np.asarray(images)
        count = images.shape[0] if images.ndim else 0
        if images.ndim < 1 or images.size != count * self.input_size:
            raise ValueError(
                f"images must hold {self.input_size} values each (the training images' size), "
                f"got shape {images.shape}"
            )
        prepared: np.ndarray = self.apply(_numpy_namespace(), images)
        return prepared

    def blank(self) -> np.ndarray:
        """The row of a blank image, what zeros become: float32, shape (D,)."""
        row: np.ndarray = self(np.zeros((1, self.input_size), dtype=np.float32))[0]
        return row

    def apply(self, xp: Namespace, images: Array) -> Array:
        """The formula itself, in any Array API namespace, without the checks of a call.

        Lazy arrays (a traced ONNX graph, Dask) go through it as NumPy arrays do: the
        batch size may be unknown.

        Parameters
        ----------
        xp : module
            The Array API namespace of ``images``.
        images : array, shape (N, ...)
            With D values each.

        Returns
        -------
        array of float32, shape (N, D)
        """
        rows = xp.reshape(images, (-1, self.input_size))
        if not xp.isdtype(rows.dtype, "real floating"):
            rows = xp.astype(rows, xp.float32)  # pixels: exact in float32
        if self.scale != 1.0:
            rows = rows * self.scale  # a float32 value, exact as a Python float
        rows = xp.astype(rows, xp.float32, copy=False)  # no copy of float32 rows
        return rows - xp.asarray(self.mean, device=device_of(rows))

    def metadata(self) -> dict[str, str | float]:
        """The JSON part of a model file's record of it (the mean is stored as an array)."""
        return {"name": self.name, "scale": self.scale}


def check_fitted(name: JSON, scale: JSON, mean: npt.ArrayLike) -> None:
    """Check that a stored preprocessing is one :func:`fit_preprocessing` can give.

    A fitted preprocessing has its name's scale exactly, and a mean row of scaled
    pixels: finite float32 values from 0 to 255 times the scale.

    Parameters
    ----------
    name, scale
        As stored (unchecked types).
    mean : numpy.ndarray, shape (D,)

    Raises
    ------
    ValueError
        Saying which value cannot have been fitted, and why.
    """
    if name not in _SCALES:
        raise ValueError(f"unknown preprocessing {name!r}; xpnet knows {list(PREPROCESSINGS)}")
    expected = _SCALES[name]
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale != expected:
        raise ValueError(f"preprocessing {name} scales pixels by {expected!r}, not {scale!r}")
    mean = np.asarray(mean)
    if mean.ndim != 1 or mean.dtype != np.float32 or not np.all(np.isfinite(mean)):
        raise ValueError(
            f"a preprocessing mean is a row of finite float32 values, got shape {mean.shape} "
            f"of {mean.dtype}"
        )
    top = np.float32(_MAX_PIXEL * expected) * np.float32(1 + 1e-6)
    if mean.size and not (mean.min() >= 0 and mean.max() <= top):
        raise ValueError(
            f"preprocessing {name}'s mean must lie between 0 and {_MAX_PIXEL * expected:g} (the "
            f"mean of pixels 0..{_MAX_PIXEL} scaled by {expected:g}), got {mean.min():g} to "
            f"{mean.max():g}"
        )


def fit_preprocessing(name: str, X_train: npt.ArrayLike) -> Preprocessing:
    """Fit the preprocessing called ``name`` on training images (N, ...).

    Raises
    ------
    ValueError
        For an unknown name or no training images.
    """
    if name not in _SCALES:
        raise ValueError(f"unknown preprocessing {name!r}; choose from {list(PREPROCESSINGS)}")
    X_train = np.asarray(X_train)
    if X_train.ndim < 1 or X_train.shape[0] == 0:
        raise ValueError("cannot fit a preprocessing on no training images")
    scale = _SCALES[name]
    if scale == 1.0:
        # The lab's: the mean image of the float32 pixels, as its get_mnist_data computes it.
        mean = np.mean(X_train, axis=0).reshape(-1).astype(np.float32, copy=False)
    else:
        rows = (X_train * np.float32(scale)).reshape(X_train.shape[0], -1).astype(np.float32)
        mean = rows.mean(axis=0)
    return Preprocessing(name, scale, mean)


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
    preprocessing = fit_preprocessing("subtract_mean_image", X_train)
    return [preprocessing(X) for X in (X_train, *others)]


def scale_and_center(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale pixels from 0..255 to 0..1, subtract the training mean, reshape to rows.

    The inputs of the fast recipe (:mod:`xpnet.recipes`): features of order 1 suit
    He initialisation and a learning rate of order 0.1.

    Returns
    -------
    list of numpy.ndarray of float32, shapes (N, D), (M, D), ...
    """
    preprocessing = fit_preprocessing("scale_and_center", X_train)
    return [preprocessing(X) for X in (X_train, *others)]


def _numpy_namespace() -> Namespace:
    return array_namespace(np.empty(0))


#: Fit-and-apply functions by name: ``PREPROCESSORS[name](X_train, X_val, ...)``.
PREPROCESSORS = {"subtract_mean_image": subtract_mean_image, "scale_and_center": scale_and_center}
