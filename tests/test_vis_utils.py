"""visualize_grid: the lab's image tiling."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import resolve_backend
from xpnet.vis_utils import visualize_grid


def test_grid_shape_and_padding():
    grid = visualize_grid(np.random.default_rng(0).random((5, 4, 3, 1)), padding=2)
    # ceil(sqrt(5)) = 3 images a side
    assert grid.shape == (3 * 4 + 2 * 2, 3 * 3 + 2 * 2, 1)
    assert np.all(grid[4:6, :] == 0)  # padding rows between image rows


def test_each_image_is_rescaled_to_the_upper_bound():
    images = np.stack([np.full((2, 2, 1), 7.0), np.arange(4.0).reshape(2, 2, 1) * 10])
    grid = visualize_grid(images, ubound=255.0, padding=0)
    np.testing.assert_array_equal(grid[:2, :2, 0], 0)  # a constant image becomes 0
    np.testing.assert_allclose(grid[:2, 2:4, 0], [[0, 85], [170, 255]])


def test_accepts_backend_arrays(backend):
    b = resolve_backend(backend)
    grid = visualize_grid(b.asarray(np.ones((4, 2, 2, 1)) * np.arange(4).reshape(4, 1, 1, 1)))
    assert isinstance(grid, np.ndarray)
    assert grid.shape == (5, 5, 1)


def test_rejects_rows():
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        visualize_grid(np.zeros((4, 784)))


def test_columns_give_only_as_many_rows_as_the_images_fill():
    grid = visualize_grid(np.ones((175, 4, 4, 1)), padding=1, columns=14)
    rows = -(-175 // 14)  # 13, not the square's 14
    assert grid.shape == (rows * 5 - 1, 14 * 5 - 1, 1)
