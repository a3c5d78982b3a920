"""Distortions on the device: identity, shifts, determinism across backends, labels kept."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.augment import AUGMENTATIONS, Augmentation


def digits(n=6, seed=0):
    """Blobs on a blank 28x28 background, as rows, in float64."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28))
    images[:, 8:20, 10:18] = rng.random((n, 12, 8))
    return images.reshape(n, 784)


def apply(backend, augment, rows, noise):
    xp = backend.xp
    constants = augment.constants(xp, xp.float64, backend.device)
    device_noise = {k: backend.asarray(v) for k, v in noise.items()}
    return to_numpy(augment.apply(xp, backend.asarray(rows), device_noise, constants))


def test_the_identity_returns_the_input(backend):
    rows = digits()
    augment = Augmentation()  # all zero
    noise = {k: v[0] for k, v in augment.draw(np.random.default_rng(0), 1, 6).items()}
    np.testing.assert_array_equal(apply(backend, augment, rows, noise), rows)


@pytest.mark.parametrize(("axis", "sign"), [(1, 1), (1, -1), (0, 1)])
def test_a_one_pixel_shift_is_a_rolled_image_inside(backend, axis, sign):
    rows = digits()
    augment = Augmentation(shift=1)
    affine = np.zeros((6, 5), dtype=np.float32)
    affine[:, 3 + axis] = sign  # u[:, 3] shifts rows (axis 0), u[:, 4] columns (axis 1)
    shifted = apply(backend, augment, rows, {"affine": affine}).reshape(6, 28, 28)
    rolled = np.roll(rows.reshape(6, 28, 28), -sign, axis=1 + axis)
    np.testing.assert_allclose(shifted[:, 1:-1, 1:-1], rolled[:, 1:-1, 1:-1], atol=1e-12)


def test_pixels_from_outside_are_blank(backend):
    rows = np.ones((2, 784))
    augment = Augmentation(shift=3)
    affine = np.zeros((2, 5), dtype=np.float32)
    affine[:, 4] = 1  # three columns to the right: the last three sample outside
    shifted = apply(backend, augment, rows, {"affine": affine}).reshape(2, 28, 28)
    np.testing.assert_array_equal(shifted[:, :, -3:], 0)
    np.testing.assert_array_equal(shifted[:, :, :-3], 1)


@pytest.mark.parametrize("name", ["affine", "elastic", "affine+elastic"])
def test_the_same_seed_gives_the_same_batch_on_every_backend(backend, name):
    augment = AUGMENTATIONS[name]
    rows = digits()
    noise = {k: v[0] for k, v in augment.draw(np.random.default_rng(7), 1, 6).items()}
    again = {k: v[0] for k, v in augment.draw(np.random.default_rng(7), 1, 6).items()}
    for key in noise:
        np.testing.assert_array_equal(noise[key], again[key])
    reference = apply(__import__("xpnet").resolve_backend("numpy"), augment, rows, noise)
    np.testing.assert_allclose(apply(backend, augment, rows, noise), reference, atol=1e-10)
    assert not np.allclose(reference, rows)  # it did distort


def test_distortions_keep_the_labels(backend):
    """Training with distortions changes the images, never the targets: with the
    identity distortion, a run equals one without augmentation, step for step."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 784)), rng.integers(0, 10, 64)
    runs = []
    for augment in (None, Augmentation()):
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=0)
        runs.append(net.train(X, y, X, y, num_iters=20, batch_size=16, augment=augment))
    np.testing.assert_allclose(runs[1]["loss_history"], runs[0]["loss_history"], rtol=1e-12)


def test_a_distorted_batch_is_drawn_afresh_each_step(backend):
    net = TwoLayerNet(784, 8, 10, std=0.1, backend=backend, seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 784)), rng.integers(0, 10, 32)
    stats = net.train(X, y, X, y, num_iters=6, batch_size=32, augment=AUGMENTATIONS["affine"])
    assert len(set(stats["loss_history"])) == 6


def test_drawing_steps_at_once_equals_drawing_them_one_by_one():
    """Compiled runs draw a chunk of steps, the eager loop one: the same noise either way."""
    augment = AUGMENTATIONS["affine+elastic"]
    chunk = augment.draw(np.random.default_rng(3), 3, 4)
    rng = np.random.default_rng(3)
    one_by_one = [augment.draw(rng, 1, 4) for _ in range(3)]
    for name, values in chunk.items():
        np.testing.assert_array_equal(values, np.concatenate([step[name] for step in one_by_one]))


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"elastic_sigma": 0}, ValueError, r"elastic_sigma must be in \(0, inf\)"),
        ({"rotation": float("nan")}, ValueError, "rotation must be a finite real number"),
        ({"shift": -1}, ValueError, r"shift must be in \[0, inf\)"),
        ({"scale": 1.0}, ValueError, "scale must be below 1"),
        ({"shear": "0.1"}, TypeError, "shear must be a real number"),
        ({"image_shape": (28,)}, TypeError, r"image_shape must be \(height, width\)"),
    ],
)
def test_distortions_that_cannot_be_made_are_refused_when_described(settings, error, message):
    with pytest.raises(error, match=message):
        Augmentation(**settings)
