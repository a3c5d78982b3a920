"""Training: the settings of a run, validated once, and the loop that follows them.

:class:`TrainSettings` (with its :class:`ComputeSettings`) holds every choice of a
run and checks them all when it is built; every entry point builds one before it
changes anything. :func:`fit` runs the steps (``TwoLayerNet.train`` calls it), and
the bookkeeping it leans on (batches, learning rates, chunks, the record) is here too.
"""

from xpnet._typing import SCHEDULES, Schedule
from xpnet.training._loop import fit
from xpnet.training._record import (
    BatchSampler,
    EpochCallback,
    History,
    ProgressCallback,
    Rates,
    RunRecord,
    chunks,
    iterations_per_epoch,
    learning_rates,
)
from xpnet.training._settings import ComputeSettings, TrainSettings, num_iters_for

__all__ = [
    "SCHEDULES",
    "BatchSampler",
    "ComputeSettings",
    "EpochCallback",
    "History",
    "ProgressCallback",
    "Rates",
    "RunRecord",
    "Schedule",
    "TrainSettings",
    "chunks",
    "fit",
    "iterations_per_epoch",
    "learning_rates",
    "num_iters_for",
]
