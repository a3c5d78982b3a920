"""Arranging many small images into one, as the lab's ``visualize_grid`` does."""

from __future__ import annotations

import math

import numpy as np

from xpnet._typing import ArrayLike
from xpnet.backend import to_numpy

__all__ = ["visualize_grid"]


def visualize_grid(
    Xs: ArrayLike, ubound: float = 255.0, padding: int = 1, *, columns: int | None = None
) -> np.ndarray:
    """Tile images into a grid, each rescaled to ``[0, ubound]``.

    Parameters
    ----------
    Xs : array, shape (N, H, W, C)
        The images, as a NumPy array or an array of any backend.
    ubound : float, default 255.0
        Each image is rescaled so its minimum is 0 and its maximum ``ubound``.
    padding : int, default 1
        Blank pixels between neighbouring images.
    columns : int, optional
        Images per row, with just as many rows as they fill. By default the grid is
        square, ``G = ceil(sqrt(N))`` images a side, as the lab's.

    Returns
    -------
    numpy.ndarray, shape (R * H + (R - 1) * padding, G * W + (G - 1) * padding, C)
        The grid of ``R`` rows and ``G`` columns; unused cells are 0.
    """
    Xs = to_numpy(Xs).astype(np.float64)
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got shape {Xs.shape}")
    N, H, W, C = Xs.shape
    low = Xs.min(axis=(1, 2, 3), keepdims=True)
    span = Xs.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = ubound * (Xs - low) / np.where(span > 0, span, 1.0)

    G = math.ceil(math.sqrt(N)) if columns is None else columns
    R = G if columns is None else math.ceil(N / G)
    cells = np.zeros((R * G, H + padding, W + padding, C))
    cells[:N, :H, :W] = scaled
    grid = cells.reshape(R, G, H + padding, W + padding, C).transpose(0, 2, 1, 3, 4)
    tiled: np.ndarray = grid.reshape(R * (H + padding), G * (W + padding), C)
    return tiled[: R * (H + padding) - padding, : G * (W + padding) - padding]
