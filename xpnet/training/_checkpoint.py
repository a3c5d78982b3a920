"""Checkpoints: a training run written down at the end of a step, and read back to go on.

A checkpoint holds everything the rest of a run depends on: the parameters, the
optimiser's state (velocities, Adam's moments and step count), the number of steps
taken (which gives the schedule's position and counts every random draw still to come,
:mod:`xpnet.training._randomness`), the run's seed, the network generator's state
after the run drew it, the best epoch so far (with its parameters, for
``restore_best``), the history, the settings, and, for a network without a seed, the
lab's batch rows drawn before the first step. Resuming from it therefore continues
the very run that wrote it: the parameters and the history at the end are those of
the run that was never stopped, bit for bit, on the same backend, device, dtype and
runner.

The file is a model file (:mod:`xpnet.model_file`): written atomically, read without
trusting it (no pickles; every array's shape and dtype checked against the metadata's
declaration before it is read), and loadable by :meth:`xpnet.TwoLayerNet.load` as the
network it holds. Its metadata's ``checkpoint`` holds the run's state; its ``training``
the record so far, as a model file's does.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xpnet import model_file
from xpnet._typing import JSON, Array, JSONObject, Params, params_from
from xpnet._wording import on_command_line
from xpnet.backend import to_numpy
from xpnet.errors import ModelFileError
from xpnet.training._record import History, iterations_per_epoch
from xpnet.training._settings import TrainSettings

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "Checkpointing",
    "data_record",
    "read_checkpoint",
    "write_checkpoint",
]

#: The checkpoint's name in a run's output directory (``xpnet train --resume DIR``).
CHECKPOINT_FILE = "checkpoint.npz"
#: The settings a resumed run may change: the length of the run, to train longer.
MAY_CHANGE = ("num_iters",)
_PREFIX = model_file.CHECKPOINT_PREFIX
_HISTORIES = ("loss_history", "train_acc_history", "val_acc_history")
#: What a checkpoint's metadata ``checkpoint`` holds (besides ``arrays``).
_STATE = {"iterations", "checked", "seed", "rng_state", "best_acc", "best_epoch",
          "stopped_epoch", "data"}  # fmt: skip


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often a run writes its checkpoint.

    Parameters
    ----------
    path : path-like
        The checkpoint file, replaced whole at each write.
    every : int, default 1
        Epochs between writes; 0 writes only when the run stops (Ctrl-C, SIGTERM, an
        exception from a callback, or its end). A run writes at its end and when it is
        stopped in any case.
    metadata : dict, optional
        What the file records besides (the dataset, the recipe, the preprocessing's
        description), as :func:`xpnet.model_file.write_model` takes it.
    extras : dict, optional
        Extra arrays of a model file (the preprocessing's mean).
    """

    path: str | os.PathLike[str]
    every: int = 1
    metadata: Mapping[str, JSON] = field(default_factory=dict)
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(os.fspath(self.path)))
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 0:
            raise ValueError(
                f"checkpoint_every must be a whole number of epochs, 0 or more, got {self.every!r}"
            )


@dataclass(frozen=True)
class Checkpoint:
    """A run as its checkpoint file holds it (:func:`read_checkpoint`): NumPy arrays.

    Attributes
    ----------
    path : pathlib.Path
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    optimizer : dict
        The optimiser's state by flat name (``velocity.W1``, ``m.W1``, ``t``, ...).
    iterations : int
        The steps taken.
    checked : int
        The step of the run's last divergence check.
    seed : int
        The run's seed, from which its random streams are keyed.
    rng_state : dict or None
        The network generator's state after the run drew its seed (None: no generator).
    history : dict
        As :attr:`xpnet.training.TrainResult.history`, so far.
    best_acc, best_epoch
        The best validation accuracy so far and its epoch (-1.0 and None before any).
    stopped_epoch : int or None
        The epoch at whose end early stopping stopped the run (None: it did not).
    best_params : dict or None
        The best epoch's parameters, kept for ``restore_best``.
    lab_rows : numpy.ndarray or None
        A network without a seed: every epoch's batch rows, drawn before the run.
    settings : dict
        The run's settings as :meth:`xpnet.training.TrainSettings.to_dict` gives them,
        with ``num_train``.
    data : dict
        Fingerprints of the training and validation data
        (:func:`~xpnet.training._checkpoint.data_record`).
    metadata : dict
        The whole file's metadata (what the caller added: dataset, recipe, ...).
    """

    path: Path
    params: Params
    optimizer: dict[str, np.ndarray]
    iterations: int
    checked: int
    seed: int
    rng_state: JSONObject | None
    history: History
    best_acc: float
    best_epoch: int | None
    stopped_epoch: int | None
    best_params: Params | None
    lab_rows: np.ndarray | None
    settings: JSONObject
    data: JSONObject
    metadata: JSONObject

    def refuse_differences(self, differ: Sequence[str]) -> None:
        """Refuse to go on with a run that differs from this one in ``differ`` (phrases such
        as ``"seed 4 (the checkpoint's: 3)"``), naming them all; none: nothing to refuse."""
        if differ:
            raise ValueError(
                f"cannot resume from {self.path}: this run differs from the checkpoint's in "
                f"{'; '.join(differ)}. Resume with the checkpoint's settings and data; only the "
                "length of the run (epochs or num_iters) may change"
            )

    def check_resumable(
        self, settings: TrainSettings, num_train: int, data: JSONObject | None = None
    ) -> None:
        """Refuse to go on with this run by ``settings`` on ``num_train`` rows of ``data``
        (:func:`~xpnet.training._checkpoint.data_record`; None: the data is not checked)
        if it is not this run, naming what differs.

        Raises
        ------
        ValueError
            For other settings or data than the checkpoint's (the differences named), or
            a ``num_iters`` that cannot continue it: fewer steps than it has taken, or
            another length with the cosine schedule (whose rates it sets) or for a
            network without a seed (whose batches were drawn for its length).
        """
        # As the file holds them: JSON's lists for tuples (an augmentation's image shape).
        planned = json.loads(json.dumps({**settings.to_dict(), "num_train": num_train}))
        differ = [
            f"{name} {planned.get(name)!r} (the checkpoint's: {self.settings.get(name)!r})"
            for name in sorted(set(self.settings) | set(planned))
            if name not in MAY_CHANGE and self.settings.get(name) != planned.get(name)
        ] + [f"the {name.replace('_', ' ')} (not the checkpoint's)" for name in sorted(self.data)
             if self.data.get(name) != (data or self.data).get(name)]  # fmt: skip
        self.refuse_differences(differ)
        where = f"cannot resume from {self.path}"
        before, after = self.settings.get("num_iters"), settings.num_iters
        if after < self.iterations:
            raise ValueError(
                f"{where}: its run has taken {self.iterations} steps, more than "
                f"num_iters={after}; ask for at least as many"
            )
        if after != before and settings.schedule == "cosine":
            raise ValueError(
                f"{where} with num_iters={after}: the cosine schedule's rates are set by the "
                f"run's length ({before} steps); resume with its length"
            )
        if after != before and self.lab_rows is not None:
            raise ValueError(
                f"{where} with num_iters={after}: a network without a seed drew the batches "
                f"of its {before} steps from NumPy's global state before it began; resume "
                "with its length, or train with a seed"
            )
        self._check_state(settings, num_train)

    def _check_state(self, settings: TrainSettings, num_train: int) -> None:
        """Refuse a state that does not fit the settings it records: a damaged file."""

        def corrupt(what: str) -> ModelFileError:
            return ModelFileError(f"{self.path}: its {what} do not fit its run: corrupt")

        D, H, C = settings.sizes
        if (self.params["W1"].shape, self.params["W2"].shape) != ((D, H), (H, C)):
            raise corrupt("parameters")
        per_epoch = iterations_per_epoch(num_train, settings.batch_size)
        epochs = self.iterations // per_epoch
        accuracies = self.history["train_acc_history"], self.history["val_acc_history"]
        if len(accuracies[0]) != epochs or len(accuracies[1]) not in (0, epochs) or not all(
            0 <= a <= 1 for a in (*accuracies[0], *accuracies[1])
        ):  # fmt: skip
            raise corrupt("accuracy histories")
        best, stopped = self.best_epoch, self.stopped_epoch
        if (
            (best is None and self.best_acc != -1)
            or (best is not None and not (1 <= best <= epochs and 0 <= self.best_acc <= 1))
            or (
                stopped is not None
                and not (settings.early_stopping and (best or 0) < stopped == epochs)
            )
            or (self.best_params is not None) != (settings.restore_best and best is not None)
        ):
            raise corrupt("best and stopped epochs")  # fmt: skip
        rows = self.lab_rows
        if (rows is None) == (self.rng_state is None):
            raise corrupt("batch rows (kept for a run without a generator only)")
        size = min(settings.batch_size, num_train) if settings.shuffle else settings.batch_size
        if rows is not None and not (
            rows.dtype == np.int64 and rows.ndim == 2 and rows.shape[1] == size
            and rows.shape[0] % per_epoch == 0 and rows.shape[0] >= settings.num_iters
            and (rows.size == 0 or (rows.min() >= 0 and rows.max() < num_train))
        ):  # fmt: skip
            raise corrupt("batch rows")


def data_record(X: Array, y: Array, validation: tuple[Array, Array] | None) -> JSONObject:
    """The data as a checkpoint records it: a fingerprint of the training rows and labels,
    and of the validation ones (None without)."""
    return {
        "training_data": _fingerprint(X, y),
        "validation_data": None if validation is None else _fingerprint(*validation),
    }


def _fingerprint(X: Array, y: Array) -> str:
    """A short hash of rows ``X`` and labels ``y`` (any library, any device), by which a
    resumed run knows its data is the checkpoint's. SHA-256, which current x86 and Arm
    processors compute in hardware: over MNIST's 345 MB of float64 training rows, 0.2 s
    against BLAKE2's 0.4 s on a 2-core AMD EPYC."""
    digest = hashlib.sha256()
    for array in (X, y):
        host = np.ascontiguousarray(to_numpy(array))
        digest.update(f"{host.dtype.str}{host.shape}".encode())
        digest.update(host.data)
    return digest.hexdigest()[:32]


def write_checkpoint(
    checkpointing: Checkpointing,
    params: Params,
    optimizer: Mapping[str, Array],
    record: JSONObject,
    state: JSONObject,
    history: History,
    best_params: Params | None,
    lab_rows: Array | None,
) -> None:
    """Write a checkpoint file atomically (the previous one stays whole if this fails).

    ``state`` is the metadata's ``checkpoint`` (iterations, seed, generator state, best
    epoch, data); ``record`` the ``training`` record so far.
    """
    arrays: dict[str, np.ndarray] = {
        f"{_PREFIX}optimizer.{name}": to_numpy(value) for name, value in optimizer.items()
    }
    for name in _HISTORIES:
        arrays[f"{_PREFIX}{name}"] = np.asarray(history[name], dtype=np.float64)
    if best_params is not None:
        arrays.update({f"{_PREFIX}best.{k}": to_numpy(v) for k, v in best_params.items()})
    if lab_rows is not None:
        arrays[f"{_PREFIX}lab_rows"] = to_numpy(lab_rows).astype(np.int64)
    metadata = {**checkpointing.metadata, "training": record, "checkpoint": state}
    model_file.write_model(checkpointing.path, params, metadata,
                           {**checkpointing.extras, **arrays})  # fmt: skip


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint file written by a training run.

    Raises
    ------
    xpnet.errors.ModelFileError
        If the file is not a valid model file (as :func:`xpnet.model_file.read_model`
        says), or is one but no checkpoint, or its run's state does not add up (a
        history of another length than its steps, an optimiser's state of other shapes
        than the parameters').
    """
    params, metadata, extras = model_file.read_model(path)
    state = metadata.get("checkpoint")
    record = metadata.get("training")
    if not isinstance(state, dict) or not isinstance(record, dict):
        writes = f"xpnet train writes {CHECKPOINT_FILE} beside model.npz" if on_command_line() \
            else "a training run given checkpoint=PATH writes one"  # fmt: skip
        raise ModelFileError(f"{path}: a model file, not a checkpoint ({writes})")

    def field_of(name: str, kinds: tuple[type, ...], holder: JSONObject = state) -> JSON:
        value = holder.get(name)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ModelFileError(f"{path}: checkpoint {name} is missing or malformed: corrupt")
        return value

    iterations = field_of("iterations", (int,))
    checked = state.get("checked")
    if not isinstance(checked, int) or isinstance(checked, bool) or \
            not 0 <= checked <= iterations:  # fmt: skip
        raise ModelFileError(f"{path}: checkpoint's checked step is malformed: corrupt")
    seed = field_of("seed", (int,))
    best_acc = field_of("best_acc", (int, float))
    best_epoch = field_of("best_epoch", (int, type(None)))
    stopped_epoch = field_of("stopped_epoch", (int, type(None)))
    rng_state = field_of("rng_state", (dict, type(None)))
    data = field_of("data", (dict,))
    settings = field_of("settings", (dict,), record)
    # as checked:
    assert isinstance(iterations, int)
    assert isinstance(seed, int)
    assert isinstance(best_acc, (int, float))
    assert isinstance(settings, dict)
    assert isinstance(data, dict)
    assert best_epoch is None or isinstance(best_epoch, int)
    assert stopped_epoch is None or isinstance(stopped_epoch, int)
    assert rng_state is None or isinstance(rng_state, dict)
    if (
        iterations < 0
        or not 0 <= seed < 2**63
        or not -1 <= best_acc <= 1
        or any(epoch is not None and epoch < 1 for epoch in (best_epoch, stopped_epoch))
    ):  # fmt: skip  (NaN, which JSON may hold, fails the comparisons)
        raise ModelFileError(f"{path}: checkpoint's iterations, seed or epochs out of range")

    def taken(prefix: str) -> dict[str, np.ndarray]:
        return {name[len(prefix):]: extras[name] for name in sorted(extras)
                if name.startswith(prefix)}  # fmt: skip

    history = {name: extras.get(_PREFIX + name) for name in _HISTORIES}
    if any(values is None or values.ndim != 1 or values.dtype != np.float64
           for values in history.values()):  # fmt: skip
        raise ModelFileError(f"{path}: checkpoint lacks its history: corrupt")
    if set(state) < _STATE or set(data) != {"training_data", "validation_data"} or not all(
        value is None or isinstance(value, str) for value in data.values()
    ):  # fmt: skip
        raise ModelFileError(f"{path}: checkpoint's state is incomplete: corrupt")
    if history["loss_history"].shape[0] != iterations:  # type: ignore[union-attr]
        raise ModelFileError(
            f"{path}: checkpoint of {iterations} steps holds a loss history of another "
            "length: corrupt"
        )
    optimizer = taken(f"{_PREFIX}optimizer.")
    best_arrays = taken(f"{_PREFIX}best.")
    for name, values in [*optimizer.items(), *best_arrays.items()]:
        key = name.rpartition(".")[2]
        expected = params[key].shape if key in params else ()
        if values.shape != expected or values.dtype != params["W1"].dtype:
            raise ModelFileError(
                f"{path}: checkpoint's {name} has shape {values.shape} and dtype "
                f"{values.dtype}, not its parameter's: corrupt"
            )
    if best_arrays and set(best_arrays) != set(params):
        raise ModelFileError(f"{path}: checkpoint's best parameters are incomplete: corrupt")
    return Checkpoint(
        path=Path(os.fspath(path)),
        params=params_from(params),
        optimizer=optimizer,
        iterations=iterations,
        checked=checked,
        seed=seed,
        rng_state=rng_state,
        history={name: values.tolist() for name, values in history.items()},  # type: ignore[union-attr]
        best_acc=float(best_acc),
        best_epoch=best_epoch,
        stopped_epoch=stopped_epoch,
        best_params=params_from(best_arrays) if best_arrays else None,
        lab_rows=extras.get(f"{_PREFIX}lab_rows"),
        settings=settings,
        data=data,
        metadata=metadata,
    )
