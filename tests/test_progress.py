"""xpnet._progress: ``train(progress=...)`` drawn by tqdm on stderr."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np
from tqdm.std import tqdm

from xpnet import TwoLayerNet
from xpnet._progress import number
from xpnet.training import TrainingProgress


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


def test_training_reports_to_the_bar_up_to_the_lab_final_loss(backend, toy_data):
    """The handout's toy training (final loss 0.0171) with the bar as ``progress``, on
    every backend (JAX's compiled runner reports after chunks of steps)."""
    X, y = toy_data
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend)
    stream = io.StringIO()
    progress = TrainingProgress(100, file=stream)
    net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, progress=progress)
    progress.close()
    # the last step: the lab's final loss, and the rate after 99 decays of 0.95 (one a step)
    assert re.search(r"100/100 \[.*, loss 0\.0171, lr 6\.23e-04\]$", stream.getvalue())


def test_importing_xpnet_draws_on_no_tqdm_auto():
    # tqdm.auto warns as it is imported in a Jupyter kernel without ipywidgets: xpnet
    # imports it only when it draws a bar, so the lab notebook's first cell stays quiet.
    code = (
        "import sys, xpnet, xpnet.training, xpnet.data, xpnet.cli, xpnet.pipeline\n"
        "print(sorted(m for m in sys.modules if m.startswith('tqdm.auto')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
