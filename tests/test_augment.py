"""Distortions on the device: identity, shifts, determinism across backends, labels kept,
and the elastic field drawn small with the statistics of Simard's."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet import random as xr
from xpnet.augment import (
    AUGMENTATIONS,
    FIELD_VARIANCE_LEFT,
    Augmentation,
    field_map,
    gaussian_matrix,
)
from xpnet.training import distortion_noise

NUMPY = resolve_backend("numpy")


def draw(backend, augment, step, batch, seed=7):
    """One step's noise, drawn on the backend's device, as NumPy arrays."""
    on = {"xp": backend.xp, "device": backend.device}
    keys = (xr.stream_key(seed, 2, **on), xr.stream_key(seed, 3, **on))
    step = backend.asarray(np.int32(step))
    noise = distortion_noise(augment, backend.xp, keys, step, batch, backend.device)
    return {name: to_numpy(values) for name, values in noise.items()}


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
    noise = draw(backend, augment, 0, 6)
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
    noise = draw(backend, augment, 5, 6)
    reference_noise = draw(NUMPY, augment, 5, 6)
    for key in reference_noise:  # bit for bit: uniforms are exact multiples of 2**-24
        np.testing.assert_array_equal(noise[key], reference_noise[key])
    assert not np.array_equal(draw(NUMPY, augment, 6, 6)["affine"], reference_noise["affine"])
    reference = apply(NUMPY, augment, rows, noise)
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
    """Every batch is 32 copies of one digit and a learning rate of 1e-300 leaves the
    parameters as they were: the steps' losses differ only by their distortions. They
    are all equal without distortions, all different with them."""
    X, y = np.repeat(digits(1), 32, axis=0), np.full(32, 3)
    losses = {}
    for name in ("none", "affine", "elastic"):
        net = TwoLayerNet(784, 8, 10, std=0.1, backend=backend, seed=0)
        history = net.train(X, y, None, None, learning_rate=1e-300, num_iters=20,
                            batch_size=32, augment=AUGMENTATIONS[name])  # fmt: skip
        losses[name] = history["loss_history"]
    assert len(set(losses["none"])) == 1
    assert len(set(losses["affine"])) == len(set(losses["elastic"])) == 20


def test_the_field_map_keeps_simards_covariance():
    """B B^T equals G G^T but for the eigenvalues left out, at most 1e-5 of the variance."""
    for n, sigma in ((28, 4.0), (28, 2.0), (20, 6.0)):
        G, B = gaussian_matrix(n, sigma), field_map(n, sigma)
        covariance = G @ G.T
        assert B.shape[0] == n
        assert B.shape[1] < n
        left = np.trace(covariance - B @ B.T) / np.trace(covariance)
        assert 0 <= left <= FIELD_VARIANCE_LEFT
        np.testing.assert_allclose(B @ B.T, covariance, atol=1e-4 * covariance.max())
    assert Augmentation(elastic_alpha=34, elastic_sigma=4).field_shape == (8, 8)
    # a narrow Gaussian needs more of the field: the rank grows as sigma shrinks
    assert field_map(28, 1.0).shape[1] > field_map(28, 2.0).shape[1] > 8
    # the sign of each column is fixed, not left to LAPACK
    ramp = np.arange(1, 29) ** 2
    assert (ramp @ field_map(28, 4.0) > 0).all()


def test_the_small_field_has_the_statistics_of_simards_field():
    """Simard's field (1,568 uniforms an image, smoothed) and xpnet's (128, mapped):
    the same variance at every pixel and the same correlation between neighbours,
    from 4,000 fields each; the displacements' distributions agree (KS test)."""
    augment = AUGMENTATIONS["elastic"]
    n, rng = 4000, np.random.default_rng(0)
    G = gaussian_matrix(28, 4.0)
    simard = G @ rng.uniform(-1, 1, (n, 28, 28)) @ G.T
    constants = augment.constants(np, np.float64, "cpu")
    small = draw(NUMPY, augment, 0, n // 2)["field"].astype(np.float64).reshape(n, 8, 8)
    ours = constants["field_rows"] @ small @ constants["field_columns"].T
    for field in (simard, ours):
        assert field.shape == (n, 28, 28)
    np.testing.assert_allclose(ours.var(axis=0), simard.var(axis=0), rtol=0.12)
    for a, b in ((ours[:, 14, 14], simard[:, 14, 14]), (ours[:, 3, 20], simard[:, 3, 20])):
        assert ks_statistic(a, b) < 1.63 * np.sqrt(2 / n)  # the 1% critical value
    neighbours = [np.corrcoef(f[:, 14, 14], f[:, 14, 18])[0, 1] for f in (ours, simard)]
    assert abs(neighbours[0] - neighbours[1]) < 0.05
    # the test can fail: an unsmoothed field is far from Simard's
    assert ks_statistic(rng.uniform(-1, 1, n), simard[:, 14, 14]) > 1.63 * np.sqrt(2 / n)


def ks_statistic(a, b):
    """The two-sample Kolmogorov-Smirnov statistic."""
    values = np.sort(np.concatenate([a, b]))
    cdf = [np.searchsorted(np.sort(x), values, side="right") / x.size for x in (a, b)]
    return np.abs(cdf[0] - cdf[1]).max()


def test_drawing_steps_at_once_equals_drawing_them_one_by_one():
    """Compiled runs draw a chunk of steps, the eager loop one: the same noise either way."""
    augment = AUGMENTATIONS["affine+elastic"]
    on = {"xp": np, "device": "cpu"}
    keys = (xr.stream_key(3, 2, **on), xr.stream_key(3, 3, **on))
    chunk = distortion_noise(augment, np, keys, np.arange(4, 7, dtype=np.int32), 4, "cpu")
    for k, step in enumerate(range(4, 7)):
        one = distortion_noise(augment, np, keys, np.int32(step), 4, "cpu")
        for name, values in chunk.items():
            np.testing.assert_array_equal(values[k], one[name])


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
