"""MNIST's preparation of a drawing (xpnet/serve/_prepare.py), checked against MNIST's own
digits and against shapes whose answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.serve import mnist_image, render_strokes


def bounding_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the nonzero pixels."""
    rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    return rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    total = image.sum(dtype=np.float64)
    return float((image * ys).sum() / total), float((image * xs).sum() / total)


@pytest.mark.mnist
def test_mnist_test_digits_come_out_as_they_are(mnist_dir):
    # MNIST's digits already went through this preparation: doing it again must leave
    # every one where it is, each pixel within one grey level (a digit whose inkiest
    # pixel is 254 is scaled to 255).
    from xpnet.data import read_data_sets

    X_test = read_data_sets(mnist_dir)[4][:1000, :, :, 0]
    for digit in X_test:
        again = mnist_image(digit)
        assert again.dtype == np.uint8
        assert again.shape == (28, 28)
        assert np.abs(again.astype(int) - digit).max() <= 1


@pytest.mark.parametrize(("height", "width"), [(40, 10), (10, 40), (7, 7), (300, 150)])
def test_the_bounding_box_is_scaled_to_fit_20x20_keeping_its_aspect(height, width):
    ink = np.zeros((400, 500))
    ink[33 : 33 + height, 71 : 71 + width] = 1.0
    image = mnist_image(ink)
    _, _, h, w = bounding_box(image)
    assert max(h, w) == 20
    assert h / w == pytest.approx(height / width, rel=0.15)
    assert image.max() == 255


def test_an_off_centre_shape_is_centred_by_its_centre_of_mass_not_its_box():
    ink = np.zeros((100, 100))
    ink[10:90, 10:20] = 1.0  # an L: a heavy upright and a foot
    ink[80:90, 10:90] = 1.0
    image = mnist_image(ink)
    cy, cx = centre_of_mass(image)
    # whole-pixel shifts, as MNIST's, leave it within half a pixel (and grey levels' rounding)
    assert abs(cy - 14) <= 0.6
    assert abs(cx - 14) <= 0.6
    top, left, h, w = bounding_box(image)
    assert (top + h / 2, left + w / 2) != pytest.approx((14, 14), abs=1)  # the box is not centred


def test_ink_is_never_pushed_out_of_the_frame():
    ink = np.zeros((60, 60))
    ink[0:60, 0:3] = 1.0  # a thin bar with a heavy blob at its top
    ink[0:6, 0:60] = 1.0
    ink[0:20, 0:20] = 1.0
    image = mnist_image(ink)
    assert image.astype(float).sum() == pytest.approx(
        mnist_image(np.pad(ink, 50)).astype(float).sum()
    )
    top, left, h, w = bounding_box(image)
    assert min(top, left) >= 0
    assert max(top + h, left + w) <= 28
    assert max(h, w) == 20


def test_scaling_down_anti_aliases():
    ink = np.zeros((90, 90))
    ink[:, :7] = 1.0  # a frame's corner, 7 of 90 pixels thick: 1.56 of 20 pixels
    ink[:7, :] = 1.0
    image = mnist_image(ink)
    greys = set(np.unique(image)) - {0, 255}
    assert greys  # partly covered pixels are grey, not black or white


def test_a_line_renders_with_the_pens_width_and_round_ends():
    image = render_strokes([[[10.0, 50.0], [110.0, 50.0]]], pen=20)
    # bounding box: 100 long plus the pen's width, 20 high; the longer side is 80 pixels
    assert image.shape == (14, 80)
    assert image.max() == 1.0
    assert image[7, 40] == 1.0  # the middle of the line
    assert max(image[0, 0], image[0, -1]) < 0.5  # round caps leave the corners empty
    assert image.min() == 0.0


def test_a_dot_is_a_disc():
    image = render_strokes([[[5.0, 5.0]]], pen=10)
    assert image.shape == (80, 80)
    area = image.sum() / image.size
    assert area == pytest.approx(np.pi / 4, rel=0.02)


def test_strokes_become_an_mnist_image():
    one = [[[140, 50], [135, 230]]]
    image = mnist_image(render_strokes(one, pen=20))
    _, _, h, w = bounding_box(image)
    assert h == 20
    assert w < 6
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14) <= 0.5
    assert abs(cx - 14) <= 0.5


@pytest.mark.parametrize(
    ("ink", "message"),
    [
        (np.zeros((28, 28)), "no ink"),
        (np.zeros((2, 28, 28)), "2-D"),
        (-np.ones((5, 5)), "non-negative"),
        (np.full((5, 5), np.nan), "finite"),
    ],
)
def test_bad_images_are_refused(ink, message):
    with pytest.raises(ValueError, match=message):
        mnist_image(ink)


@pytest.mark.parametrize(
    ("strokes", "pen", "message"),
    [
        ([], 10, "no strokes"),
        ([[], []], 10, "no strokes"),
        ([[[1, 2]]], 0, "positive"),
        ([[[1, 2]]], float("inf"), "positive"),
        ([[[1, float("nan")]]], 10, "finite"),
        # too small to measure: the pen's width vanishes beside the coordinates
        ([[[10, 10]]], 1e-20, "too small to measure"),
        ([[[10, 10]]], 5e-324, "too small to measure"),
        ([[[1e6, -1e6], [1e6, -1e6]]], 1e-300, "too small to measure"),
        # a pen too thin to leave ink at 80 pixels across
        ([[[10, 10], [10, 100]]], 1e-20, "too thin"),
        ([[[0, 0], [1e-300, 0]]], 5e-324, "too thin"),
        ([[[0, 0], [1600, 0]]], 0.5, "too thin"),
    ],
)
def test_bad_strokes_are_refused(strokes, pen, message):
    with pytest.raises(ValueError, match=message):
        render_strokes(strokes, pen)


def test_the_thinnest_pen_taken_still_leaves_ink():
    # 1/1600 of the drawing's size: a twentieth of a rendering sample
    ink = render_strokes([[[0, 0], [1600, 0]]], pen=1.01)
    assert ink.max() > 0
    assert mnist_image(ink).max() == 255
