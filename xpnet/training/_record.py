"""The bookkeeping of a training run: epochs, learning rates, chunks, and the record.

The loop (:mod:`xpnet.training._loop`) leans on these pieces:
:func:`learning_rates` gives the schedule, :func:`chunks` cuts an epoch into the
pieces a runner executes without waiting on the device, :class:`RunRecord` keeps
the losses, the accuracies and the last parameters known to be finite, and
:class:`TrainResult` is what a run returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from xpnet._typing import Array, JSONObject, Namespace, Params, Schedule, map_params
from xpnet.backend import is_writeable_array, to_numpy
from xpnet.errors import TrainingDivergedError

__all__ = [
    "ChunkCallback",
    "EpochCallback",
    "History",
    "ProgressCallback",
    "Rates",
    "RunRecord",
    "TrainResult",
    "chunks",
    "copied",
    "divergence_message",
    "iterations_per_epoch",
    "learning_rates",
]

History = dict[str, list[float]]
#: ``progress(iteration, loss, learning_rate)``, called after each chunk of steps.
ProgressCallback = Callable[[int, Array, float], None]
#: ``on_epoch(epoch, mean_loss, val_acc) -> stop``, called after each epoch.
EpochCallback = Callable[[int, float, "float | None"], "bool | None"]
#: ``on_chunk(params)``, called after each chunk of steps with the parameters so far.
ChunkCallback = Callable[[Params], None]


def iterations_per_epoch(num_rows: int, batch_size: int) -> int:
    """The steps of an epoch: ``max(num_rows // batch_size, 1)``. A shuffled epoch visits
    each row at most once (the ``num_rows % batch_size`` left over wait for the next
    permutation); a sampled one draws as many batches."""
    return max(num_rows // batch_size, 1)


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
        return Rates(self.host[index, ...], self.device[index, ...])


@dataclass(frozen=True)
class TrainResult:
    """What a training run returns.

    Attributes
    ----------
    params : dict
        The parameters after the run: new arrays (the ones it started from are unchanged).
    history : dict
        ``loss_history`` (a float per iteration), ``train_acc_history`` and
        ``val_acc_history`` (a float per epoch).
    record : dict
        What the run did, as plain data, for ``TwoLayerNet.last_training``: its
        ``settings``, the ``path`` that ran, the CPU ``threads`` it ran on, its
        ``iterations``, ``final_loss`` and ``final_val_acc``; with ``early_stopping`` or
        ``restore_best``, ``stopped_epoch`` (the epoch, from 1, at whose end early
        stopping stopped it; None: it ran all its iterations), ``kept_epoch`` (the epoch
        whose parameters it returns; None: the last step's) and ``epochs`` (whole epochs run).
    """

    params: Params
    history: History
    record: JSONObject


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
        self.checkpoint = copied(xp, params)
        #: The iteration of the parameters ``checkpoint`` holds.
        self.kept_at = 0
        #: The accuracies of a resumed run's earlier epochs, as floats (:meth:`resume`).
        self.earlier: History = {"train_acc_history": [], "val_acc_history": []}

    def resume(self, losses: Array, history: History, checked: int) -> None:
        """Begin where a checkpoint's run stopped: its ``losses`` (K,) on the device, in the
        dtype the steps' losses have, the accuracies of its ``history``, and the iteration
        of its last divergence check, so that the checks fall where they would have. The
        parameters at this point (finite: a checkpoint holds no others) are the ones a
        divergence goes back to until the next check."""
        self.losses.append(losses)
        self.iterations = self.kept_at = int(losses.shape[0])
        # A check was due here (a callback that raised came before it): it is, as it would
        # have been, and passed (a checkpoint's state is finite).
        self.checked = self.iterations if self.iterations - checked >= self.check_every \
            else checked  # fmt: skip
        for name in self.earlier:
            self.earlier[name] = list(history[name])

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
        if not self.finite(params):
            return False
        self.checkpoint, self.checked = copied(self.xp, params), self.iterations
        self.kept_at = self.iterations
        return True

    def finite(self, params: Params) -> bool:
        """Whether the losses since the last check and ``params`` are all finite; one wait
        on the device, and nothing else changes."""
        xp = self.xp
        unchecked = self._unchecked_losses()
        finite = [xp.all(xp.isfinite(p)) for p in params.values()]
        if unchecked is not None:
            finite.append(xp.all(xp.isfinite(unchecked)))
        return bool(xp.all(xp.stack(finite)))

    def history(self, iterations: int | None = None) -> History:
        """The losses (the first ``iterations`` of them) and accuracies, as Python floats.

        The losses so far are joined into one array on the device, so that a run asked
        for its history every epoch (for a checkpoint) joins each loss once."""
        if len(self.losses) > 1:
            self.losses = [self.xp.concat(self.losses)]
        losses = self._floats(self.losses, concat=True)
        earlier = self.earlier
        return {
            "loss_history": losses[:iterations] if iterations is not None else losses,
            "train_acc_history": earlier["train_acc_history"] + self._floats(self.train_accs),
            "val_acc_history": earlier["val_acc_history"] + self._floats(self.val_accs),
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
        loss = float(recent[bad[0]]) if bad.size else None
        return TrainingDivergedError(
            divergence_message(iteration, loss, learning_rate, self.kept_at),
            iteration,
            self.history(iteration),
            self.checkpoint,
        )

    def _floats(self, arrays: list[Array], concat: bool = False) -> list[float]:
        """Device arrays as Python floats, with one transfer."""
        if not arrays:
            return []
        joined = self.xp.concat(arrays) if concat else self.xp.stack(arrays)
        floats: list[float] = to_numpy(joined).astype(float).tolist()
        return floats


def copied(xp: Namespace, params: Params) -> Params:
    """A copy of ``params`` that later in-place updates cannot change (immutable arrays,
    JAX's, are their own copy)."""
    return map_params(lambda p: xp.asarray(p, copy=True) if is_writeable_array(p) else p, params)


def divergence_message(
    iteration: int, loss: float | None, learning_rate: float, kept_at: int
) -> str:
    """What a run that diverged at ``iteration`` says: its first loss that is not finite
    (None: the losses were finite, the parameters overflowed), the learning rate at the
    check, and the iteration whose parameters it keeps."""
    value = "finite, but the parameters overflowed" if loss is None else _number(loss)
    return (
        f"training diverged at iteration {iteration}: the loss became {value} with "
        f"learning rate {learning_rate:.3g}. The network keeps its parameters from "
        f"iteration {kept_at}, the last known to be finite. Lower the learning "
        "rate (or the momentum) and train again."
    )


def _number(value: float) -> str:
    """A loss as a short string: ``nan``, ``inf``, or ``1.2e+190``."""
    return f"{value:.3g}"
