"""The bookkeeping of a training run: batches, learning rates, chunks, and the record.

The loop (:mod:`xpnet.training._loop`) leans on these pieces: :class:`BatchSampler`
draws an epoch of batch indices at a time, on the device,
:func:`learning_rates` gives the schedule, :func:`chunks` cuts an epoch into the
pieces a runner executes without waiting on the device, and :class:`RunRecord` keeps
the losses, the accuracies and the last parameters known to be finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xpnet import random as xr
from xpnet._typing import Array, Namespace, Params, Schedule, map_params
from xpnet.backend import Backend, device_of, is_writeable_array, to_numpy
from xpnet.errors import TrainingDivergedError

__all__ = [
    "BatchSampler",
    "EpochCallback",
    "History",
    "ProgressCallback",
    "Rates",
    "RunRecord",
    "chunks",
    "iterations_per_epoch",
    "lab_rows",
    "learning_rates",
]

History = dict[str, list[float]]
#: ``progress(iteration, loss, learning_rate)``, called after each chunk of steps.
ProgressCallback = Callable[[int, Array, float], None]
#: ``on_epoch(epoch, mean_loss, val_acc) -> stop``, called after each epoch.
EpochCallback = Callable[[int, float, "float | None"], "bool | None"]


def iterations_per_epoch(num_rows: int, batch_size: int) -> int:
    """The steps of an epoch: ``max(num_rows // batch_size, 1)``. A shuffled epoch visits
    each row at most once (the ``num_rows % batch_size`` left over wait for the next
    permutation); a sampled one draws as many batches."""
    return max(num_rows // batch_size, 1)


class BatchSampler:
    """Row indices for every step of an epoch, drawn on the device at once.

    Without ``shuffle``, rows are sampled with replacement, as the lab does: the rows
    of step ``t`` are :func:`xpnet.random.integers` of the ``batch`` stream at counter
    ``t``. With it, epoch ``e`` visits the rows of :func:`xpnet.random.permutation`
    at counter ``e`` in consecutive batches. Either way the numbers depend on the key
    and the counters alone: the same on every backend, however the steps are chunked.

    Parameters
    ----------
    xp : module
        The Array API namespace.
    key : array, shape (2,), int32
        The key of the run's ``batch`` stream.
    num_rows, batch_size : int
    shuffle : bool
    drawn : array, shape (E * per_epoch, B), optional
        Every epoch's rows, drawn before the run (:func:`lab_rows`): then
        :meth:`epoch` cuts them, and ``key`` is not used.
    """

    def __init__(
        self, xp: Namespace, key: Array, num_rows: int, batch_size: int, shuffle: bool,
        drawn: Array | None = None,
    ):  # fmt: skip
        self.xp, self.key, self.drawn = xp, key, drawn
        self.num_rows, self.batch_size, self.shuffle = num_rows, batch_size, shuffle
        #: Steps per epoch: ``max(num_rows // batch_size, 1)``.
        self.per_epoch = iterations_per_epoch(num_rows, batch_size)

    def epoch(self, epoch: int) -> Array:
        """Epoch ``epoch``'s batches: an integer array of shape (per_epoch, B) on the device."""
        xp, on = self.xp, {"xp": self.xp, "device": device_of(self.key)}
        if self.drawn is not None:
            return self.drawn[epoch * self.per_epoch : (epoch + 1) * self.per_epoch, :]
        if self.shuffle:
            size = min(self.batch_size, self.num_rows)
            order = xr.permutation(self.key, epoch, self.num_rows, **on)
            return xp.reshape(order[: self.per_epoch * size], (self.per_epoch, size))
        first = epoch * self.per_epoch
        steps = xp.arange(first, first + self.per_epoch, dtype=xp.int32, device=on["device"])
        return xr.integers(self.key, steps, (self.batch_size,), self.num_rows, **on)


def lab_rows(
    backend: Backend, rng: Any, num_rows: int, batch_size: int, shuffle: bool, num_iters: int
) -> Array:
    """Every epoch's batch rows of a run, drawn as the lab draws them, from NumPy's
    global state (``np.random.choice`` a batch, with replacement; a permutation an
    epoch with ``shuffle``), before the first step, and moved to the device once.

    A network without a seed follows ``np.random.seed``, as the lab's does; these
    are then its batches, so that the handout's toy numbers come out exactly.
    ``rng`` is the ``numpy.random`` module.

    Returns
    -------
    array, shape (E * per_epoch, B), on the backend's device
        ``E`` the epochs the run begins.
    """
    per_epoch = max(num_rows // batch_size, 1)
    epochs = -(-num_iters // per_epoch)
    if shuffle:
        size = min(batch_size, num_rows)
        rows = [rng.permutation(num_rows)[: per_epoch * size] for _ in range(epochs)]
        drawn = np.concatenate(rows).reshape(epochs * per_epoch, size)
    else:
        drawn = np.concatenate(
            [rng.choice(num_rows, (per_epoch, batch_size)) for _ in range(epochs)]
        )
    return backend.asarray(drawn)


def learning_rates(
    schedule: Schedule, learning_rate: float, decay: float, num_iters: int, per_epoch: int,
    start: int, stop: int,
) -> np.ndarray:  # fmt: skip
    """The learning rate of each iteration in ``[start, stop)``.

    ``"step"``: ``learning_rate * decay ** epoch``, the lab's decay once per epoch.
    ``"cosine"``: ``learning_rate * (1 + cos(pi * t / num_iters)) / 2`` at iteration ``t``.
    """
    t = np.arange(start, stop)
    if schedule == "step":
        return learning_rate * decay ** (t // per_epoch).astype(float)
    return learning_rate * (1 + np.cos(math.pi * t / num_iters)) / 2


@dataclass(frozen=True)
class Rates:
    """A run of learning rates, on the host (for eager steps) and on the device (compiled)."""

    host: np.ndarray
    device: Array

    def __getitem__(self, index: slice) -> Rates:
        return Rates(self.host[index], self.device[index])


def chunks(length: int, first: int, max_chunk: int, report_every: int | None) -> Iterator[slice]:
    """Cut an epoch of ``length`` steps, starting at iteration ``first``, into chunks.

    A chunk holds at most ``max_chunk`` steps, and when ``report_every`` is given, a
    chunk ends right after every iteration that is a multiple of it, so that a
    progress callback sees those iterations.
    """
    start = 0
    while start < length:
        stop = min(start + max_chunk, length)
        if report_every:
            due = first + start + (-(first + start)) % report_every  # the next multiple
            stop = min(stop, due - first + 1)
        yield slice(start, stop)
        start = stop


class RunRecord:
    """What one training run keeps: losses, accuracies, and the last finite parameters.

    Losses stay on the device, a (K,) array per chunk, until :meth:`history` reads
    them all with one transfer. Every ``check_every`` iterations, :meth:`check`
    waits for the device once to see that the losses and parameters are finite,
    and copies the parameters as the run's checkpoint; after a failed check,
    :meth:`divergence` describes what went wrong.

    Parameters
    ----------
    xp : module
        The Array API namespace of the run.
    params : dict
        The parameters at the start, the first checkpoint.
    check_every : int
        Iterations between divergence checks.
    """

    def __init__(self, xp: Namespace, params: Params, check_every: int):
        self.xp = xp
        self.check_every = check_every
        self.losses: list[Array] = []
        self.train_accs: list[Array] = []
        self.val_accs: list[Array] = []
        self.iterations = 0
        self.checked = 0
        self.checkpoint = self._snapshot(params)

    def add_losses(self, losses: Array) -> None:
        """Record the (K,) losses of a chunk."""
        self.losses.append(losses)
        self.iterations += int(losses.shape[0])

    def add_accuracies(self, train_acc: Array, val_acc: Array | None) -> None:
        """Record an epoch's accuracies, 0-d arrays on the device (``val_acc`` may be None)."""
        self.train_accs.append(train_acc)
        if val_acc is not None:
            self.val_accs.append(val_acc)

    def epoch_summary(self, per_epoch: int) -> tuple[float, float | None]:
        """The mean loss of the last ``per_epoch`` iterations and the last validation
        accuracy (None if none is recorded), as floats: one wait on the device."""
        recent, total = [], 0
        for chunk in reversed(self.losses):
            recent.append(chunk)
            total += int(chunk.shape[0])
            if total >= per_epoch:
                break
        xp = self.xp
        losses = xp.concat(recent[::-1])[-per_epoch:]
        if self.val_accs:
            both = to_numpy(xp.stack([xp.mean(losses), xp.astype(self.val_accs[-1], losses.dtype)]))
            return float(both[0]), float(both[1])
        return float(xp.mean(losses)), None

    @property
    def check_due(self) -> bool:
        """Whether ``check_every`` iterations have passed since the last check."""
        return self.iterations - self.checked >= self.check_every

    def check(self, params: Params) -> bool:
        """Whether the losses and parameters since the last check are all finite.

        One wait on the device. When they are, ``params`` becomes the checkpoint.
        """
        xp = self.xp
        unchecked = self._unchecked_losses()
        finite = [xp.all(xp.isfinite(p)) for p in params.values()]
        if unchecked is not None:
            finite.append(xp.all(xp.isfinite(unchecked)))
        if not bool(xp.all(xp.stack(finite))):
            return False
        self.checkpoint, self.checked = self._snapshot(params), self.iterations
        return True

    def history(self, iterations: int | None = None) -> History:
        """The losses (the first ``iterations`` of them) and accuracies, as Python floats."""
        losses = self._floats(self.losses, concat=True)
        return {
            "loss_history": losses[:iterations] if iterations is not None else losses,
            "train_acc_history": self._floats(self.train_accs),
            "val_acc_history": self._floats(self.val_accs),
        }

    def _unchecked_losses(self) -> Array | None:
        """The losses since the last check, as one array (None if there are none)."""
        xp = self.xp
        if self.iterations == self.checked:
            return None
        total, recent = self.iterations, []
        for chunk in reversed(self.losses):
            recent.append(chunk)
            total -= int(chunk.shape[0])
            if total <= self.checked:
                break
        joined = xp.concat(recent[::-1])
        return joined[self.checked - total :]

    def divergence(self, learning_rate: float) -> TrainingDivergedError:
        """The error to raise after a failed :meth:`check`: where and how the run diverged."""
        unchecked = self._unchecked_losses()
        recent = to_numpy(unchecked) if unchecked is not None else np.zeros(0)
        bad = np.flatnonzero(~np.isfinite(recent))
        iteration = self.checked + (int(bad[0]) if bad.size else len(recent))
        value = _number(recent[bad[0]]) if bad.size else "finite, but the parameters overflowed"
        return TrainingDivergedError(
            f"training diverged at iteration {iteration}: the loss became {value} with "
            f"learning rate {learning_rate:.3g}. The network keeps its parameters from "
            f"iteration {self.checked}, the last check with a finite loss. Lower the learning "
            "rate (or the momentum) and train again.",
            iteration,
            self.history(iteration),
        )

    def _snapshot(self, params: Params) -> Params:
        """A copy of ``params`` that later in-place updates cannot change."""
        xp = self.xp
        return map_params(
            lambda p: xp.asarray(p, copy=True) if is_writeable_array(p) else p, params
        )

    def _floats(self, arrays: list[Array], concat: bool = False) -> list[float]:
        """Device arrays as Python floats, with one transfer."""
        if not arrays:
            return []
        joined = self.xp.concat(arrays) if concat else self.xp.stack(arrays)
        return to_numpy(joined).astype(float).tolist()


def _number(value: float) -> str:
    """A loss as a short string: ``nan``, ``inf``, or ``1.2e+190``."""
    return f"{value:.3g}"
