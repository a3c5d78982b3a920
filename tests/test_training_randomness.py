"""A training run's randomness: the batches, the run's seed, the streams, the draws ahead."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet import random as xr
from xpnet._typing import PARAM_NAMES
from xpnet.augment import AUGMENTATIONS
from xpnet.training import BatchSampler, _randomness


def sampler(backend, num_rows, batch_size, shuffle, seed=0):
    on = {"xp": backend.xp, "device": backend.device}
    key = xr.stream_key(seed, 0, **on)
    return BatchSampler(backend.xp, key, num_rows, batch_size, shuffle=shuffle)


def test_shuffled_epochs_visit_every_row_once(backend):
    shuffled = sampler(backend, 12, 4, shuffle=True)
    epochs = [to_numpy(shuffled.epoch(e)) for e in range(2)]
    for epoch in epochs:  # two epochs, each a permutation of the rows
        assert epoch.shape == (3, 4)
        assert sorted(epoch.ravel().tolist()) == list(range(12))
    assert not np.array_equal(epochs[0], epochs[1])


def test_sampling_with_replacement_draws_an_epoch_of_batches(backend):
    epoch = to_numpy(sampler(backend, 10, 3, shuffle=False).epoch(0))
    assert epoch.shape == (3, 3)
    assert epoch.min() >= 0
    assert epoch.max() < 10
    # step t's rows are the batch stream's integers at counter t, whatever the epoch
    later = to_numpy(sampler(backend, 10, 3, shuffle=False).epoch(2))
    on = {"xp": np, "device": "cpu"}
    step_7 = xr.integers(xr.stream_key(0, 0, **on), 7, (3,), 10, **on)
    np.testing.assert_array_equal(later[1], step_7)


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_batches_are_the_same_on_every_backend(backend_beside_numpy, shuffle):
    numpy = resolve_backend("numpy")
    for epoch in (0, 3):
        np.testing.assert_array_equal(
            to_numpy(sampler(backend_beside_numpy, 50, 7, shuffle).epoch(epoch)),
            to_numpy(sampler(numpy, 50, 7, shuffle).epoch(epoch)),
        )


@pytest.mark.parametrize("shuffle", [False, True])
def test_another_seed_draws_other_batches(shuffle):
    numpy = resolve_backend("numpy")
    assert not np.array_equal(
        to_numpy(sampler(numpy, 50, 7, shuffle, seed=1).epoch(0)),
        to_numpy(sampler(numpy, 50, 7, shuffle).epoch(0)),
    )


def test_a_batch_larger_than_the_data_takes_every_row_once_when_shuffling(backend):
    epoch = to_numpy(sampler(backend, 5, 200, shuffle=True).epoch(0))
    assert epoch.shape == (1, 5)
    assert sorted(epoch[0].tolist()) == list(range(5))


# A run's randomness: drawn on the device, counted by the step; nothing random from
# the host once the steps have begun.

RANDOM_SETTINGS = {"dropout": 0.3, "augment": AUGMENTATIONS["affine+elastic"], "shuffle": True}


def small_data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)), rng.integers(0, 10, n)


def test_a_run_draws_one_seed_from_the_host_however_many_steps_it_takes(backend):
    """The net's NumPy generator gives the run its seed and nothing more: after 2 steps
    and after 40 (5 epochs) it is in the same state."""
    X, y = small_data()
    states = []
    for num_iters in (2, 40):
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
        net.train(X, y, None, None, num_iters=num_iters, batch_size=8, **RANDOM_SETTINGS)
        states.append(net.rng.bit_generator.state)
    assert states[0] == states[1]
    untouched = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
    assert untouched.rng.bit_generator.state != states[0]  # the seed's one draw


def test_a_seed_gives_the_same_training_on_every_backend(backend_beside_numpy):
    """Batches, dropout masks and distortions are the same numbers on every backend."""
    X, y = small_data()
    losses = []
    for on in (resolve_backend("numpy"), backend_beside_numpy):
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=on, seed=3)
        stats = net.train(X, y, None, None, num_iters=12, batch_size=8, learning_rate=1e-2,
                          **RANDOM_SETTINGS)  # fmt: skip
        losses.append(stats["loss_history"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-10)


def test_the_eager_loop_draws_ahead_what_each_step_would_draw(backend, monkeypatch):
    """The eager loop draws the randomness of 16 steps in one call: the training is bit
    for bit the one that draws a step at a time, across blocks and epochs (32 steps an
    epoch, 40 steps)."""
    X, y = small_data()
    trained = []
    for ahead in (1, 16):
        monkeypatch.setattr(_randomness, "DRAW_AHEAD_STEPS", ahead)
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
        net.train(X, y, None, None, num_iters=40, batch_size=2, learning_rate=1e-2,
                  compile=False, **RANDOM_SETTINGS)  # fmt: skip
        trained.append({name: to_numpy(p) for name, p in net.params.items()})
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(trained[1][name], trained[0][name], err_msg=name)
