"""The bookkeeping of training runs: batches, learning rates, chunks, the run record."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet import random as xr
from xpnet._typing import PARAM_NAMES
from xpnet.augment import AUGMENTATIONS, Augmentation
from xpnet.functional import one_hot
from xpnet.neural_net import TrainStep, stream_keys
from xpnet.optim import make_optimizer
from xpnet.training import (
    BatchSampler,
    ComputeSettings,
    Rates,
    RunRecord,
    TrainSettings,
    _loop,
    chunks,
    learning_rates,
    num_iters_for,
)


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
def test_the_batches_are_the_same_on_every_backend(backend, shuffle):
    numpy = resolve_backend("numpy")
    for epoch in (0, 3):
        np.testing.assert_array_equal(
            to_numpy(sampler(backend, 50, 7, shuffle).epoch(epoch)),
            to_numpy(sampler(numpy, 50, 7, shuffle).epoch(epoch)),
        )
    assert not np.array_equal(
        to_numpy(sampler(numpy, 50, 7, shuffle, seed=1).epoch(0)),
        to_numpy(sampler(numpy, 50, 7, shuffle).epoch(0)),
    )


def test_a_batch_larger_than_the_data_takes_every_row_once_when_shuffling(backend):
    epoch = to_numpy(sampler(backend, 5, 200, shuffle=True).epoch(0))
    assert epoch.shape == (1, 5)
    assert sorted(epoch[0].tolist()) == list(range(5))


def test_step_schedule_decays_once_per_epoch():
    rates = learning_rates("step", 0.1, 0.5, num_iters=10, per_epoch=3, start=2, stop=8)
    np.testing.assert_allclose(rates, [0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_cosine_schedule_follows_the_half_cosine():
    rates = learning_rates("cosine", 0.2, 1.0, num_iters=4, per_epoch=2, start=0, stop=4)
    np.testing.assert_allclose(rates, [0.2 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)])


@pytest.mark.parametrize(
    ("length", "first", "max_chunk", "report_every", "expected"),
    [
        (5, 0, 1, None, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),
        (250, 0, 100, None, [(0, 100), (100, 200), (200, 250)]),
        # Reports at iterations 0, 100 and 200 end chunks there.
        (250, 0, 100, 100, [(0, 1), (1, 101), (101, 201), (201, 250)]),
        # An epoch starting at iteration 550: the report at 600 is its 51st step.
        (100, 550, 100, 100, [(0, 51), (51, 100)]),
    ],
)
def test_chunks_respect_the_cap_and_the_reports(length, first, max_chunk, report_every, expected):
    got = [(c.start, c.stop) for c in chunks(length, first, max_chunk, report_every)]
    assert got == expected


def _params(backend, W1):
    """Parameters of a 1-1-1 network whose W1 holds ``W1``."""
    return {name: backend.asarray(np.array(W1 if name == "W1" else [0.0])) for name in PARAM_NAMES}


def test_run_record_keeps_losses_on_the_device_and_reads_them_once(backend):
    xp = backend.xp
    params = _params(backend, [1.0, 2.0])
    record = RunRecord(xp, params, check_every=3)
    record.add_losses(backend.asarray(np.array([3.0, 2.0])))
    assert not record.check_due
    record.add_losses(backend.asarray(np.array([1.0])))
    assert record.check_due
    assert record.check(params)
    assert record.checked == 3
    assert record.history()["loss_history"] == [3.0, 2.0, 1.0]


def test_run_record_finds_the_first_non_finite_loss(backend):
    xp = backend.xp
    params = _params(backend, [1.0])
    record = RunRecord(xp, params, check_every=2)
    record.add_losses(backend.asarray(np.array([3.0, 2.0])))
    assert record.check(params)
    params["W1"] = backend.asarray(np.array([5.0]))  # the next step moved the parameters
    record.add_losses(backend.asarray(np.array([1.0, np.inf, np.nan])))
    assert not record.check(params)
    error = record.divergence(learning_rate=0.5)
    assert error.iteration == 3
    assert "the loss became inf" in str(error)
    assert error.history["loss_history"] == [3.0, 2.0, 1.0]
    np.testing.assert_array_equal(to_numpy(record.checkpoint["W1"]), [1.0])


# The settings: validated completely when built.


def settings(**changes):
    return TrainSettings(**{"input_size": 4, "hidden_size": 10, "output_size": 3, **changes})


def test_settings_hold_plain_python_values_and_are_plain_data(backend):
    built = settings(
        batch_size=np.int64(50), learning_rate=np.float32(0.5), shuffle=np.True_,
        compute=ComputeSettings(backend),
    )  # fmt: skip
    assert type(built.batch_size) is int
    assert type(built.learning_rate) is float
    assert built.shuffle is True
    plain = built.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert plain["compute"]["backend"] == backend.name


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"hidden_size": 0}, ValueError, "hidden_size must be a positive integer, got 0"),
        ({"hidden_size": 2.0}, TypeError, "hidden_size must be a positive integer"),
        ({"optimizer": "adam", "momentum": 0.5}, ValueError, r"momentum=0\.5 is SGD's"),
        ({"augment": Augmentation()}, ValueError, r"augment distorts images of 28x28 pixels"),
        ({"init": "xavier"}, ValueError, r"init must be one of \('gaussian', 'he'\)"),
        ({"std": 1e200}, ValueError, "overflow float64"),
        ({"compute": "numpy"}, TypeError, "compute must be a ComputeSettings"),
        ({"batch_size": 10**12}, ValueError, r"batch_size=1000000000000 .* needs"),
        ({"weight_decay": -1.0, "optimizer": "adamw"}, ValueError, "weight_decay must be in"),
        ({"weight_decay": 0.1}, ValueError, r"weight_decay=0\.1 is AdamW's"),
    ],
)
def test_bad_settings_name_the_argument(changes, error, message):
    with pytest.raises(error, match=message):
        settings(**changes)


def test_weight_decay_left_out_is_zero_without_adamw_and_the_old_reading_with_it():
    assert settings(optimizer="adam").weight_decay == 0.0
    with pytest.warns(DeprecationWarning, match="reg=0.01 with optimizer='adamw'"):
        old = settings(optimizer="adamw", reg=0.01)
    assert (old.reg, old.weight_decay) == (0.0, 0.01)
    assert old.replace(num_iters=5).weight_decay == 0.01  # settled once: no second reading
    new = settings(optimizer="adamw", reg=0.01, weight_decay=0.0)
    assert (new.reg, new.weight_decay) == (0.01, 0.0)


def test_replace_checks_again():
    with pytest.raises(ValueError, match="num_iters"):
        settings().replace(num_iters=0)
    assert settings().replace(num_iters=7).num_iters == 7


@pytest.mark.parametrize(
    ("compute", "error", "message"),
    [
        ({"backend": "nope"}, ValueError, "unknown backend 'nope'"),
        ({"dtype": "float16"}, ValueError, r"dtype must be one of \('float32', 'float64'\)"),
        ({"dtype": 32}, TypeError, "dtype must be one of"),
        ({"device": "cuda:0"}, ValueError, "runs on the 'cpu' device only"),
    ],
)
def test_compute_settings_check_the_machine(compute, error, message):
    with pytest.raises(error, match=message):
        ComputeSettings(**compute)


def test_compute_settings_pickle_by_name_and_check_again_on_unpickling(backend):
    if backend.spec is None:
        pytest.skip("an unlisted namespace does not pickle")
    compute = ComputeSettings(backend, dtype="float32")
    again = pickle.loads(pickle.dumps(compute))
    assert again.resolved == compute.resolved
    assert again.dtype == "float32"


@pytest.mark.backend("jax")
def test_float64_on_jax_can_switch_on_its_64_bit_mode():
    jax = pytest.importorskip("jax")
    ComputeSettings("jax", dtype="float64", enable_float64=True)
    assert jax.config.read("jax_enable_x64")


# Randomness: drawn on the device, counted by the step; nothing random from the host
# once the steps have begun.

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
        states.append(net._rng.bit_generator.state)
    assert states[0] == states[1]
    untouched = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
    assert untouched._rng.bit_generator.state != states[0]  # the seed's one draw


def test_a_seed_gives_the_same_training_on_every_backend(backend):
    """Batches, dropout masks and distortions are the same numbers on every backend."""
    X, y = small_data()
    losses = []
    for on in (resolve_backend("numpy"), backend):
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
        monkeypatch.setattr(_loop, "DRAW_AHEAD_STEPS", ahead)
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
        net.train(X, y, None, None, num_iters=40, batch_size=2, learning_rate=1e-2,
                  compile=False, **RANDOM_SETTINGS)  # fmt: skip
        trained.append({name: to_numpy(p) for name, p in net.params.items()})
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(trained[1][name], trained[0][name], err_msg=name)


def test_a_step_uses_the_numbers_drawn_ahead_for_it(backend):
    """Given its draws, a step takes them: with every hidden unit dropped, W1 and b1
    have no gradient (plain SGD leaves them as they were), while the step's own mask
    would have kept most units."""
    xp = backend.xp
    net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
    X, y = small_data(8)
    step = TrainStep(xp, make_optimizer("sgd", momentum=0.0, reg=0.0, weight_decay=0.0,
                                        decayed=frozenset()), 0.0, 0.3)  # fmt: skip
    data = {"X": net.backend.asarray(X, dtype=net.dtype),
            "T": one_hot(xp, net.backend.asarray(y), 10, net.dtype),
            **stream_keys(xp, 0, net.device)}  # fmt: skip
    counter = xp.asarray(0, dtype=xp.int32, device=net.device)
    own = step.draw(data, counter, 8, 16)["keep"]
    assert 0 < float(xp.mean(xp.astype(own, net.dtype))) < 1
    params = {name: xp.asarray(p, copy=True) for name, p in net.params.items()}
    state = {"params": params, "optimizer": step.optimizer.init(xp, params)}
    inputs = {"batch": xp.arange(8, device=net.device), "step": counter,
              "keep": xp.zeros((8, 16), dtype=xp.bool, device=net.device)}  # fmt: skip
    step(state, data, inputs, 0.1)
    for name in ("W1", "b1"):
        np.testing.assert_array_equal(to_numpy(params[name]), to_numpy(net.params[name]))
    assert not np.array_equal(to_numpy(params["b2"]), to_numpy(net.params["b2"]))


@pytest.mark.backend("jax")
def test_a_compiled_chunk_takes_nothing_from_the_host():
    """JAX runs each chunk under a transfer guard that refuses every transfer from the
    host: a run with every kind of randomness completes, so its steps drew it on the
    device; the same chunk given one input from the host is refused."""
    pytest.importorskip("jax")
    from xpnet.backend._runners import JaxScanRunner

    X, y = small_data()
    net = TwoLayerNet(784, 16, 10, std=0.1, backend="jax", seed=3, dtype="float32")
    stats = net.train(X, y, None, None, num_iters=30, batch_size=8, **RANDOM_SETTINGS)
    assert net.last_training["path"] == JaxScanRunner.name
    assert len(stats["loss_history"]) == 30

    def step(state, data, inputs, lr):
        return inputs["step"] * lr

    rates = Rates(np.ones(2), net.backend.asarray(np.ones(2, dtype=np.float32)))
    runner = JaxScanRunner(net.backend, step)
    on_device = {"step": net.backend.asarray(np.arange(2, dtype=np.int32))}
    _, losses = runner({}, {}, on_device, rates)
    np.testing.assert_array_equal(to_numpy(losses), [0, 1])
    with pytest.raises(Exception, match="host-to-device"):
        runner({}, {}, {"step": np.arange(2, dtype=np.int32)}, rates)


# Epochs: an alternative to iterations.


@pytest.mark.parametrize(
    ("num_iters", "epochs", "rows", "batch_size", "expected"),
    [(None, None, 100, 10, 100), (7, None, 100, 10, 7), (None, 3, 105, 10, 30),
     (None, 2, 5, 10, 2)],
    ids=["neither", "iterations", "epochs (rows left over)", "a batch larger than the rows"],
)  # fmt: skip
def test_epochs_count_the_iterations_an_epoch_has(num_iters, epochs, rows, batch_size, expected):
    assert num_iters_for(num_iters, epochs, rows, batch_size) == expected


@pytest.mark.parametrize(
    ("num_iters", "epochs", "error", "message"),
    [(10, 2, ValueError, "give num_iters or epochs, not both"),
     (None, 0, ValueError, "epochs must be a positive integer, got 0"),
     (None, 1.5, TypeError, "epochs must be a positive integer")],
)  # fmt: skip
def test_bad_epochs_are_refused(num_iters, epochs, error, message):
    with pytest.raises(error, match=message):
        num_iters_for(num_iters, epochs, 100, 10)


def test_training_for_epochs_records_each_epoch(backend):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((45, 4)), rng.integers(0, 3, 45)
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    stats = net.train(X, y, X, y, epochs=3, batch_size=10, shuffle=True)
    assert len(stats["loss_history"]) == 3 * 4  # 45 // 10 steps an epoch
    assert len(stats["val_acc_history"]) == 3
    assert net.last_training["settings"]["num_iters"] == 12
    with pytest.raises(ValueError, match="not both"):
        net.train(X, y, X, y, epochs=3, num_iters=12)
