"""A drawing made into an MNIST image, the way MNIST's own digits were made.

LeCun, Cortes and Burges describe it: the ink's bounding box is scaled to fit a 20x20
box, keeping its aspect ratio, which anti-aliases it into grey levels; the result is
placed in a 28x28 image so that its centre of mass lies at the centre. On the MNIST
test images that centre is pixel (14, 14) (rows and columns counted from 0), and the
longer side of every digit's bounding box is 20 pixels.

:func:`render_strokes` turns pen strokes into a grey image; :func:`mnist_image` prepares
any grey image. The page sends strokes, the server does both, so there is one
implementation, tested like the rest of xpnet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["BOX", "CENTRE", "SIZE", "mnist_image", "render_strokes"]

#: The side of an MNIST image.
SIZE = 28
#: The side of the box the ink's bounding box is scaled to fit.
BOX = 20
#: Where the ink's centre of mass goes (row, column; pixel ``i`` at ``i``), as on MNIST's images.
CENTRE = (14.0, 14.0)
#: Rendering samples per output pixel along each side, for :func:`render_strokes`.
_SUPERSAMPLE = 4
#: The thinnest pen :func:`render_strokes` takes, in samples: a pen much thinner than a
#: sample draws only the anti-aliased edge of its line, where it draws anything.
_MIN_PEN_SAMPLES = 0.05

Point = Sequence[float]


def mnist_image(ink: np.ndarray) -> np.ndarray:
    """An image of ink prepared as MNIST's digits were.

    Parameters
    ----------
    ink : numpy.ndarray, shape (H, W)
        Grey levels, 0 for no ink, of any non-negative finite scale.

    Returns
    -------
    numpy.ndarray of uint8, shape (28, 28)
        The ink's bounding box scaled by area averaging so that its longer side is 20
        pixels, with values 0..255 (the inkiest input pixel becomes 255), shifted by
        whole pixels to put its centre of mass as near (14, 14) as the 28x28 frame
        allows without cutting ink off.

    Raises
    ------
    ValueError
        If ``ink`` is not 2-D, holds negative or non-finite values, or no ink at all.
    """
    ink = np.asarray(ink, dtype=np.float64)
    if ink.ndim != 2:
        raise ValueError(f"ink must be a 2-D image, got shape {ink.shape}")
    if not np.all(np.isfinite(ink)) or np.any(ink < 0):
        raise ValueError("ink must hold finite, non-negative grey levels")
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    if rows.size == 0:
        raise ValueError("the image has no ink: draw something first")
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = box.shape
    scale = BOX / max(height, width)
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    scaled = _area_matrix(out_h, height) @ box @ _area_matrix(out_w, width).T
    scaled *= 255 / scaled.max()
    image = np.zeros((SIZE, SIZE))
    top, left = _offset(scaled, axis=1, target=CENTRE[0]), _offset(scaled, axis=0, target=CENTRE[1])
    image[top : top + out_h, left : left + out_w] = scaled
    return np.rint(image).astype(np.uint8)


def _area_matrix(size_out: int, size_in: int) -> np.ndarray:
    """Resampling by area averaging along one axis: each output pixel's share of each
    input pixel, as a (size_out, size_in) matrix whose rows sum to one."""
    edges_in = np.arange(size_in + 1)
    edges_out = np.linspace(0, size_in, size_out + 1)
    overlap = np.minimum(edges_out[1:, None], edges_in[None, 1:]) - np.maximum(
        edges_out[:-1, None], edges_in[None, :-1]
    )
    weights: np.ndarray = np.clip(overlap, 0, None)
    rows: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return rows


def _offset(scaled: np.ndarray, axis: int, target: float) -> int:
    """The whole-pixel position of ``scaled`` along one side of the 28x28 frame that
    brings its centre of mass nearest ``target``, keeping all of it in the frame."""
    profile = scaled.sum(axis=axis)
    centre = float(profile @ np.arange(profile.size) / profile.sum())
    return min(max(round(target - centre), 0), SIZE - int(profile.size))


def render_strokes(strokes: Sequence[Sequence[Point]], pen: float) -> np.ndarray:
    """Pen strokes drawn as an anti-aliased grey image of just their ink.

    Parameters
    ----------
    strokes : sequence of sequences of (x, y)
        Each stroke is the pen's path while it touched, in any unit (a page's CSS
        pixels); a stroke of one point is a dot.
    pen : float
        The pen's width, in the unit of the points.

    Returns
    -------
    numpy.ndarray of float64, shape (H, W)
        Ink from 0 to 1 over the strokes' bounding box (the pen's width included),
        rendered so that its longer side is 80 pixels: four samples per pixel of the
        20x20 box :func:`mnist_image` scales it to.

    Raises
    ------
    ValueError
        If there is no point, a point is not two finite numbers, the pen's width is not a
        positive finite number, the drawing is too small to measure in float64, or the pen
        is under 1/1600 of the drawing's size (it would leave no visible ink).
    """
    if not (isinstance(pen, (int, float)) and math.isfinite(pen) and pen > 0):
        raise ValueError(f"pen must be a positive width, got {pen!r}")
    paths = [np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes]
    paths = [path for path in paths if path.size]
    if not paths:
        raise ValueError("there are no strokes: draw something first")
    points = np.concatenate(paths)
    if not np.all(np.isfinite(points)):
        raise ValueError("stroke points must be finite numbers")
    radius = pen / 2
    low, high = points.min(axis=0) - radius, points.max(axis=0) + radius
    extent = float(np.max(high - low))
    scale = BOX * _SUPERSAMPLE / extent if extent > 0 else math.inf
    if not math.isfinite(scale):
        raise ValueError(
            f"the drawing, its pen of width {pen!r} included, is too small to measure "
            f"({extent!r} across in float64); draw it larger or with a wider pen"
        )
    if pen * scale < _MIN_PEN_SAMPLES:
        thinnest = _MIN_PEN_SAMPLES / scale
        raise ValueError(
            f"a pen of width {pen!r} is too thin for strokes {extent:g} across: it would "
            f"leave no visible ink; use a pen at least {thinnest:.3g} wide"
        )
    width, height = np.ceil((high - low) * scale).astype(int)
    image = np.zeros((height, width))
    for path in paths:
        starts = path if len(path) == 1 else path[:-1]
        ends = path if len(path) == 1 else path[1:]
        for start, end in zip((starts - low) * scale, (ends - low) * scale, strict=True):
            _draw_segment(image, start, end, radius * scale)
    return image


def _draw_segment(image: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> None:
    """Ink a round-capped segment of ``radius`` into ``image`` (pixel units, x then y),
    keeping the darker of old and new ink; edges are anti-aliased over one pixel."""
    height, width = image.shape
    x0 = max(math.floor(min(start[0], end[0]) - radius - 1), 0)
    x1 = min(math.ceil(max(start[0], end[0]) + radius + 1), width)
    y0 = max(math.floor(min(start[1], end[1]) - radius - 1), 0)
    y1 = min(math.ceil(max(start[1], end[1]) + radius + 1), height)
    ys, xs = np.mgrid[y0:y1, x0:x1] + 0.5  # pixel centres
    direction = end - start
    length2 = max(float(direction @ direction), 1e-12)  # a dot: t is 0
    t = np.clip(((xs - start[0]) * direction[0] + (ys - start[1]) * direction[1]) / length2, 0, 1)
    distance = np.hypot(xs - (start[0] + t * direction[0]), ys - (start[1] + t * direction[1]))
    window = image[y0:y1, x0:x1]
    np.maximum(window, np.clip(radius - distance + 0.5, 0, 1), out=window)
