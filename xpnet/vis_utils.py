"""Arranging many small images into one, as the lab's ``visualize_grid`` does."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xpnet.backend import to_numpy

__all__ = ["visualize_grid"]


def visualize_grid(Xs: Any, ubound: float = 255.0, padding: int = 1) -> np.ndarray:
    """Tile images into a square grid, each rescaled to ``[0, ubound]``.

    Parameters
    ----------
    Xs : array, shape (N, H, W, C)
        The images, as a NumPy array or an array of any backend.
    ubound : float, default 255.0
        Each image is rescaled so its minimum is 0 and its maximum ``ubound``.
    padding : int, default 1
        Blank pixels between neighbouring images.

    Returns
    -------
    numpy.ndarray, shape (G * H + (G - 1) * padding, G * W + (G - 1) * padding, C)
        The grid, with ``G = ceil(sqrt(N))`` images a side; unused cells are 0.
    """
    Xs = to_numpy(Xs).astype(np.float64)
    if Xs.ndim != 4:
        raise ValueError(f"Xs must have shape (N, H, W, C), got shape {Xs.shape}")
    N, H, W, C = Xs.shape
    low = Xs.min(axis=(1, 2, 3), keepdims=True)
    span = Xs.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = ubound * (Xs - low) / np.where(span > 0, span, 1.0)

    G = math.ceil(math.sqrt(N))
    cells = np.zeros((G * G, H + padding, W + padding, C))
    cells[:N, :H, :W] = scaled
    grid = cells.reshape(G, G, H + padding, W + padding, C).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(G * (H + padding), G * (W + padding), C)
    return grid[: G * (H + padding) - padding, : G * (W + padding) - padding]
