"""Training: the settings of a run, validated once, and the loop below the model.

:class:`TrainSettings` (with its :class:`ComputeSettings`) holds every choice of a
run and checks them all when it is built; every entry point builds one before it
changes anything. :func:`fit` takes parameters, settings and data and returns new
parameters and a record (:class:`TrainResult`); ``TwoLayerNet.train`` calls it;
:func:`fit_many` trains many networks together, in one array program. Here
too are the step (:class:`TrainStep`), the runners that take steps eagerly or
compiled (:func:`select_runner`), every random number of a run
(:mod:`xpnet.training._randomness`), the bookkeeping (batches, learning rates,
chunks, the record), checkpoints (:class:`Checkpointing` to write them,
:func:`read_checkpoint` and ``fit(..., resume=)`` to go on exactly where one was
written), and :class:`TrainingProgress`, a tqdm bar for ``progress=``.
Nothing here imports the model.
"""

from xpnet._progress import TrainingProgress
from xpnet._typing import SCHEDULES, Schedule
from xpnet.training._checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    Checkpointing,
    read_checkpoint,
)
from xpnet.training._group import GroupEpochCallback
from xpnet.training._loop import fit
from xpnet.training._many import fit_many, group_key
from xpnet.training._randomness import STREAMS, BatchSampler, distortion_noise, stream_keys
from xpnet.training._record import (
    ChunkCallback,
    EpochCallback,
    History,
    ProgressCallback,
    Rates,
    RunRecord,
    TrainResult,
    chunks,
    iterations_per_epoch,
    learning_rates,
)
from xpnet.training._runners import Runner, compiled_runner_kind, select_runner
from xpnet.training._settings import (
    NETWORK_FIELDS,
    ComputeSettings,
    TrainSettings,
    num_iters_for,
)
from xpnet.training._step import TrainStep

__all__ = [
    "CHECKPOINT_FILE",
    "NETWORK_FIELDS",
    "SCHEDULES",
    "STREAMS",
    "BatchSampler",
    "Checkpoint",
    "Checkpointing",
    "ChunkCallback",
    "ComputeSettings",
    "EpochCallback",
    "GroupEpochCallback",
    "History",
    "ProgressCallback",
    "Rates",
    "RunRecord",
    "Runner",
    "Schedule",
    "TrainResult",
    "TrainSettings",
    "TrainStep",
    "TrainingProgress",
    "chunks",
    "compiled_runner_kind",
    "distortion_noise",
    "fit",
    "fit_many",
    "group_key",
    "iterations_per_epoch",
    "learning_rates",
    "num_iters_for",
    "read_checkpoint",
    "select_runner",
    "stream_keys",
]
