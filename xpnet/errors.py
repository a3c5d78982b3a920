"""The exceptions xpnet raises for bad files, failed training and lost searches."""

from __future__ import annotations

from pathlib import Path
from signal import SIGINT, Signals
from typing import Any

from xpnet._typing import JSONObject, Params

__all__ = [
    "ClusterLost",
    "DataError",
    "ModelFileError",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "TuneInterrupted",
]


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not what was expected."""


class ModelFileError(DataError):
    """A model file is unreadable, incomplete, inconsistent, or from a newer xpnet."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite during training.

    Attributes
    ----------
    iteration : int
        The first iteration whose loss was not finite.
    history : dict
        The training history up to that iteration.
    params : dict
        The parameters of the last check with a finite loss (``TwoLayerNet.train`` keeps them).
    """

    def __init__(
        self, message: str, iteration: int, history: dict[str, list[float]], params: Params
    ):
        super().__init__(message)
        self.iteration = iteration
        self.history = history
        self.params = params


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C (SIGINT) or SIGTERM after a whole iteration.

    The run's parameters are consistent: those after ``iterations`` steps
    (``TwoLayerNet.train`` keeps them). A run that writes checkpoints wrote one of
    this very point before raising: resuming from it continues the run exactly.

    Attributes
    ----------
    iterations : int
        The number of iterations completed.
    history : dict
        The training history so far.
    params : dict
        The parameters after ``iterations`` steps.
    record : dict
        What the run did so far, as :attr:`xpnet.training.TrainResult.record`.
    signal : signal.Signals
        ``SIGINT`` (Ctrl-C) or ``SIGTERM``.
    checkpoint : pathlib.Path or None
        Where the checkpoint of this point was written; None for a run without one.
    result : xpnet.pipeline.RunResult or None
        The partial run, when :func:`xpnet.pipeline.run` was training.
    """

    def __init__(
        self, iterations: int, history: dict[str, list[float]], params: Params, record: JSONObject,
        signal: Signals = SIGINT, checkpoint: Path | None = None,
    ):  # fmt: skip
        super().__init__(f"training interrupted after {iterations} iterations")
        self.iterations = iterations
        self.history = history
        self.params = params
        self.record = record
        self.signal = signal
        self.checkpoint = checkpoint
        #: What :func:`xpnet.pipeline.run` had when it stopped (None from ``train``): an
        #: :class:`xpnet.pipeline.RunResult`, typed Any for the callers that test it with
        #: ``getattr``, which the type checker does not follow.
        self.result: Any = None


class TuneInterrupted(KeyboardInterrupt):
    """A search was stopped by Ctrl-C: running trials cancelled, finished ones kept.

    Attributes
    ----------
    finished : int
        The finished trials the study holds.
    storage : str
        Where they are; the same search run again resumes from them.
    saved : pathlib.Path or None
        Set when Ctrl-C came while the best settings were being retrained: where the
        model trained so far was saved (the search itself was complete).
    """

    def __init__(self, finished: int, storage: str, saved: Path | None = None):
        super().__init__(f"search interrupted with {finished} finished trials in {storage}")
        self.finished = finished
        self.storage = storage
        self.saved = saved


class ClusterLost(RuntimeError):
    """The Dask cluster went away mid-search: its scheduler, or every worker for good.

    The trials it took with it are cancelled, not counted as failed; the finished ones
    stay in the storage, and the same search run again resumes from them.

    Attributes
    ----------
    finished : int
        The finished trials the study holds.
    storage : str
        Where they are.
    """

    def __init__(self, why: str, finished: int, storage: str):
        super().__init__(
            f"the Dask cluster was lost ({why}); {finished} finished trials are kept in "
            f"{storage}: run the same command again to resume"
        )
        self.finished = finished
        self.storage = storage
