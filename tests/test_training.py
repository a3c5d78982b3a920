"""The bookkeeping of training runs: batches, learning rates, chunks, the run record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet import to_numpy
from xpnet._typing import PARAM_NAMES
from xpnet.training import BatchSampler, RunRecord, chunks, learning_rates


def test_shuffled_epochs_visit_every_row_once(backend):
    sampler = BatchSampler(backend, np.random.default_rng(0), 12, 4, shuffle=True)
    for _ in range(2):  # two epochs, each a permutation of the rows
        epoch = to_numpy(sampler.epoch())
        assert epoch.shape == (3, 4)
        assert sorted(epoch.ravel().tolist()) == list(range(12))


def test_sampling_with_replacement_draws_an_epoch_of_batches(backend):
    sampler = BatchSampler(backend, np.random.default_rng(0), 10, 3, shuffle=False)
    epoch = to_numpy(sampler.epoch())
    assert epoch.shape == (3, 3)
    assert epoch.min() >= 0
    assert epoch.max() < 10
    again = BatchSampler(backend, np.random.default_rng(0), 10, 3, shuffle=False)
    np.testing.assert_array_equal(to_numpy(again.epoch()), epoch)


def test_a_batch_larger_than_the_data_takes_every_row_once_when_shuffling(backend):
    sampler = BatchSampler(backend, np.random.default_rng(0), 5, 200, shuffle=True)
    epoch = to_numpy(sampler.epoch())
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
