"""Training runs: the loop's parameters in and out, learning rates, chunks, the run record,
the settings."""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import signal

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet._typing import PARAM_NAMES
from xpnet.augment import Augmentation
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.training import (
    ComputeSettings,
    RunRecord,
    TrainSettings,
    chunks,
    fit,
    fit_many,
    learning_rates,
    num_iters_for,
)


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
        (
            {"schedule": "cosine", "learning_rate_decay": 0.5},
            ValueError,
            r"learning_rate_decay=0\.5 is the step schedule's .* the cosine schedule takes none",
        ),
        ({"compute": "numpy"}, TypeError, "compute must be a ComputeSettings"),
        ({"batch_size": 10**12}, ValueError, r"batch_size=1000000000000 .* needs"),
        ({"weight_decay": -1.0, "optimizer": "adamw"}, ValueError, "weight_decay must be in"),
        ({"weight_decay": 0.1}, ValueError, r"weight_decay=0\.1 is AdamW's"),
        ({"weight_decay": None, "optimizer": "adamw"}, TypeError, "weight_decay must be a real"),
    ],
)
def test_bad_settings_name_the_argument(changes, error, message):
    with pytest.raises(error, match=message):
        settings(**changes)


def test_an_std_is_checked_where_weights_are_drawn_not_for_weights_that_exist():
    """A run from existing weights (a loaded net) records its init and std but draws
    nothing; a recipe's settings draw the weights, and refuse an std that overflows."""
    import dataclasses

    from xpnet.recipes import LAB

    float32 = ComputeSettings(dtype="float32")
    assert settings(std=1e20, compute=float32).std == 1e20
    recipe = dataclasses.replace(LAB, std=1e20)
    with pytest.raises(ValueError, match=r"std=1e\+20 makes the network's scores overflow"):
        recipe.settings(input_size=4, output_size=3, seed=0, compute=float32)


def test_reg_is_the_l2_term_and_weight_decay_adamws_own_with_every_optimizer():
    """reg is never read as a weight decay: left out, weight_decay is 0 with AdamW too."""
    for optimizer in ("sgd", "adam", "adamw"):
        built = settings(optimizer=optimizer, reg=0.01)
        assert (built.reg, built.weight_decay) == (0.01, 0.0)
    both = settings(optimizer="adamw", reg=0.01, weight_decay=0.1)
    assert (both.reg, both.weight_decay) == (0.01, 0.1)


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


# The loop: parameters, settings and data in; new parameters and a record out.


def toy_problem(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def toy_settings(backend, **changes):
    return TrainSettings(**{"input_size": 4, "hidden_size": 5, "output_size": 3, "seed": 0,
                            "std": 0.1, "num_iters": 12, "batch_size": 10, "learning_rate": 0.1,
                            "compute": ComputeSettings(backend), **changes})  # fmt: skip


def test_fit_returns_new_parameters_and_leaves_the_ones_it_was_given(backend):
    """fit changes nothing it is given; TwoLayerNet.train is fit, the result kept."""
    X, y = toy_problem()
    net = TwoLayerNet(4, 5, 3, std=0.1, backend=backend, seed=0)
    before = {name: to_numpy(p).copy() for name, p in net.params.items()}
    rng = copy.deepcopy(net.rng)
    trained = fit(net.params, toy_settings(backend), X, y, rng=rng)
    assert trained.record["iterations"] == len(trained.history["loss_history"]) == 12
    assert rng.bit_generator.state != net.rng.bit_generator.state  # the run's seed drawn
    net.train(X, y, None, None, num_iters=12, batch_size=10, learning_rate=0.1)
    assert net.last_training == trained.record
    for name in PARAM_NAMES:
        assert not np.array_equal(to_numpy(trained.params[name]), before[name]), name
        np.testing.assert_array_equal(to_numpy(net.params[name]), to_numpy(trained.params[name]))


def test_fit_refuses_parameters_of_other_sizes(backend):
    X, y = toy_problem()
    net = TwoLayerNet(4, 6, 3, backend=backend, seed=0)
    with pytest.raises(ValueError, match="a 4-6-3 network; the settings describe a 4-5-3 one"):
        fit(net.params, toy_settings(backend), X, y, rng=None)


def test_a_seed_without_its_generator_is_refused(backend):
    """Settings with a seed and no generator (NumPy's global state) would give a run that
    cannot be repeated, recorded under a seed that drew nothing: refused, saying what to
    pass; with seed=None the lab's global state is the run's."""
    X, y = toy_problem()
    net = TwoLayerNet(4, 5, 3, std=0.1, backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"seed=0 seeds nothing here: rng is None"):
        fit(net.params, toy_settings(backend), X, y, rng=None)
    with pytest.raises(ValueError, match=r"seed=0 seeds nothing here: rngs\[1\] is None"):
        fit_many([net.params] * 2, [toy_settings(backend)] * 2, X, y, rngs=[net.rng, None])
    np.random.seed(3)
    first = fit(net.params, toy_settings(backend, seed=None), X, y, rng=None)
    np.random.seed(3)
    again = fit(net.params, toy_settings(backend, seed=None), X, y, rng=None)
    np.testing.assert_array_equal(to_numpy(first.params["W1"]), to_numpy(again.params["W1"]))


def test_on_chunk_sees_the_parameters_so_far(backend):
    X, y = toy_problem()
    net = TwoLayerNet(4, 5, 3, std=0.1, backend=backend, seed=0)
    seen = []
    trained = fit(net.params, toy_settings(backend, num_iters=5, seed=None), X, y, rng=None,
                  on_chunk=lambda params: seen.append(to_numpy(params["W2"]).copy()))  # fmt: skip
    assert 1 <= len(seen) <= 5  # a chunk a step eager; one chunk compiled
    np.testing.assert_array_equal(seen[-1], to_numpy(trained.params["W2"]))
    assert not np.array_equal(seen[0], to_numpy(net.params["W2"]))


def test_a_diverging_or_interrupted_run_raises_with_its_parameters(backend):
    X, y = toy_problem()
    net = TwoLayerNet(4, 5, 3, std=0.1, backend=backend, seed=0)
    with pytest.raises(TrainingDivergedError) as diverged:
        fit(net.params, toy_settings(backend, learning_rate=1e12, num_iters=30, seed=None), X, y,
            rng=None)  # fmt: skip
    assert diverged.value.params.keys() == net.params.keys()

    def interrupt(iteration, loss, learning_rate):
        if iteration == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stopped:
        fit(net.params, toy_settings(backend, num_iters=30, compile=False), X, y,
            rng=np.random.default_rng(1), progress=interrupt)  # fmt: skip
    assert stopped.value.iterations == stopped.value.record["iterations"] == 5
    short = toy_settings(backend, num_iters=5, compile=False)
    reference = fit(net.params, short, X, y, rng=np.random.default_rng(1))
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(to_numpy(stopped.value.params[name]),
                                      to_numpy(reference.params[name]))  # fmt: skip
