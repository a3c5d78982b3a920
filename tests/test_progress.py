"""xpnet._progress: ``train(progress=...)`` drawn by tqdm on stderr."""

from __future__ import annotations

import io
import re

from tqdm.std import tqdm

from xpnet._progress import TrainingProgress, number


class Loss:
    """A loss that counts how often it is read (reading waits for the device)."""

    reads = 0

    def __init__(self, value: float):
        self.value = value

    def __float__(self) -> float:
        Loss.reads += 1
        return self.value


def test_the_bar_is_tqdm_on_stderr_with_steps_loss_rate_and_speed(capsys):
    progress = TrainingProgress(50)
    assert isinstance(progress.bar, tqdm)
    for iteration in range(50):
        progress(iteration, Loss(2.0 - iteration / 100), 1e-3)
    progress.close()
    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.split("\r")[-1]
    assert re.search(r"50/50 \[[\d:]+<[\d:]+, +[\d.]+it/s, loss 1\.5100, lr 1\.00e-03\]", last)


def test_the_loss_is_read_only_when_the_bar_is_redrawn():
    Loss.reads = 0
    stream = io.StringIO()
    progress = TrainingProgress(1000, file=stream, mininterval=3600)
    for iteration in range(1000):
        progress(iteration, Loss(0.5), 0.1)
    progress.close()
    assert Loss.reads == 1  # the last iteration's, which the closed bar shows
    assert re.search(r"1000/1000 .*loss 0\.5000, lr 1\.00e-01\]$", stream.getvalue())


def test_chunks_of_steps_advance_the_bar_to_the_iteration_reported():
    stream = io.StringIO()
    progress = TrainingProgress(100, file=stream)
    for iteration in (49, 99):  # a compiled runner reports after chunks of 50 steps
        progress(iteration, Loss(1.0), 0.1)
    assert progress.bar.n == 100
    progress.close()


def test_a_disabled_bar_reads_no_loss():
    Loss.reads = 0
    progress = TrainingProgress(10, disable=True)
    for iteration in range(10):
        progress(iteration, Loss(1.0), 0.1)
    progress.close()
    assert Loss.reads == 0


def test_number_bounds_a_loss_width():
    assert [number(v) for v in (0.01171, 1.2e190, float("inf"), float("nan"))] == [
        "0.0117",
        "1.2e+190",
        "inf",
        "nan",
    ]
