"""A running run's checkpoints: written when due, taken up when it resumes.

:class:`CheckpointSaver` is the training loop's: it builds the run's record and writes
the checkpoint (:mod:`xpnet.training._checkpoint`) every so many epochs, when the run
stops, and never twice at one step; a write that fails warns and leaves the previous
file whole, and parameters that are no longer finite are never written.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xpnet._typing import JSONObject, map_params
from xpnet.errors import ModelFileError
from xpnet.training._checkpoint import (
    Checkpoint,
    Checkpointing,
    flat_state,
    nested_state,
    write_checkpoint,
)
from xpnet.training._record import History

if TYPE_CHECKING:
    from xpnet.training._loop import Run

__all__ = ["CheckpointSaver", "generator_state", "restore_generator", "take_up"]


class CheckpointSaver:
    """A run's record, and its checkpoint written when due (and not twice at one step)."""

    def __init__(
        self, run: Run, checkpointing: Checkpointing | None, data: JSONObject, threads: int
    ):
        self.run, self.checkpointing, self.data, self.threads = run, checkpointing, data, threads
        self.saved_at = run.record.iterations  # nothing new to write yet

    def record(self, history: History) -> JSONObject:
        """What the run did so far, as :attr:`TrainResult.record` says."""
        run = self.run
        s, iterations = run.settings, run.record.iterations
        record: JSONObject = {
            "settings": {**s.to_dict(), "num_train": int(run.X.shape[0])},
            "path": run.runner.name,
            "threads": self.threads,
            "iterations": iterations,
            "final_loss": history["loss_history"][-1] if history["loss_history"] else None,
            "final_val_acc": history["val_acc_history"][-1] if history["val_acc_history"]
            else None,
        }  # fmt: skip
        if run.best is not None:
            record.update(run.best.record(iterations // run.sampler.per_epoch))
        return record

    def save_after_epoch(self, epoch: int) -> None:
        """At the end of epoch ``epoch`` (from 1): a checkpoint, every ``every`` epochs."""
        every = self.checkpointing.every if self.checkpointing is not None else 0
        if every and epoch % every == 0:
            self.save()

    def save(self, final: bool = False) -> Path | None:
        """Write the checkpoint of the run as it is now (a consistent point), unless it was
        written at this step; return its path (None: none written). Parameters that are
        no longer finite are not written: the previous checkpoint stays. A write that
        fails warns, and leaves the previous file whole."""
        run, checkpointing = self.run, self.checkpointing
        if checkpointing is None:
            return None
        if self.saved_at == run.record.iterations:
            return Path(checkpointing.path)
        if not run.record.check(run.params):
            if final:
                return None
            raise run.record.divergence(float("nan"))
        history = run.record.history()
        state: JSONObject = {
            "iterations": run.record.iterations,
            "seed": run.seed,
            "rng_state": run.rng_state,
            "best_acc": run.best.best_acc if run.best is not None else -1.0,
            "best_epoch": run.best.best_epoch if run.best is not None else None,
            "stopped_epoch": run.stopped_epoch,
            "data": self.data,
        }
        best = run.best.best_params if run.best is not None else None
        try:
            write_checkpoint(checkpointing, run.params, flat_state(run.state["optimizer"]),
                             self.record(history), state, history, best,
                             run.lab_rows)  # fmt: skip
        except OSError as err:
            warnings.warn(
                f"could not write the checkpoint {checkpointing.path} ({err.strerror or err}); "
                f"the previous one is whole (step {self.saved_at}); training goes on",
                RuntimeWarning, stacklevel=2,
            )  # fmt: skip
            return None
        self.saved_at = run.record.iterations
        return Path(checkpointing.path)


def restore_generator(rng: np.random.Generator | None, resume: Checkpoint) -> None:
    """Give ``rng`` the state it had after the checkpoint's run drew its seed."""
    if rng is None or resume.rng_state is None:
        return
    try:
        rng.bit_generator.state = resume.rng_state
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(
            f"{resume.path}: its generator state does not fit this network's generator "
            f"({err}): corrupt, or written by another kind of generator"
        ) from None


def generator_state(state: object) -> JSONObject:
    """A generator's state as JSON data (arrays as lists)."""
    if isinstance(state, dict):
        return {key: generator_state(value) for key, value in state.items()}
    if isinstance(state, np.ndarray):
        return state.tolist()  # type: ignore[no-any-return]
    return state  # type: ignore[return-value]


def take_up(run: Run, resume: Checkpoint) -> None:
    """Give ``run``, just built, the state of the checkpoint's run: its optimiser, record
    and best epoch (the parameters and the randomness it took from the checkpoint itself)."""
    backend, dtype = run.backend, run.dtype
    optimizer = flat_state(run.state["optimizer"])
    if set(optimizer) != set(resume.optimizer):
        raise ModelFileError(
            f"{resume.path}: its optimiser's state holds {sorted(resume.optimizer)}, where "
            f"{run.settings.optimizer}'s has {sorted(optimizer)}: corrupt"
        )
    run.state["optimizer"] = nested_state(  # type: ignore[typeddict-item]
        {name: backend.asarray(values, dtype) for name, values in resume.optimizer.items()}
    )
    losses = backend.asarray(np.asarray(resume.history["loss_history"]), dtype)
    run.record.resume(losses, resume.history)
    run.stopped_epoch = resume.stopped_epoch
    if run.best is not None:
        best = resume.best_params
        run.best.resume(resume.best_acc, resume.best_epoch, run.stopped_epoch,
                        None if best is None else map_params(
                            lambda p: backend.asarray(p, dtype), best))  # fmt: skip
