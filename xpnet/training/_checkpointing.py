"""A running run's checkpoints: written when due, taken up when it resumes.

:class:`CheckpointSaver` is the training loop's: it builds the run's record and writes
the checkpoint (:mod:`xpnet.training._checkpoint`) every so many epochs, when the run
stops, and never twice at one step; a write that fails warns and leaves the previous
file whole, and parameters that are no longer finite are never written.
"""

from __future__ import annotations

import contextlib
import glob
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xpnet._typing import Array, JSONObject, map_params
from xpnet.errors import ModelFileError
from xpnet.training._checkpoint import Checkpoint, Checkpointing, write_checkpoint
from xpnet.training._record import History
from xpnet.training._stopping import BestEpoch

if TYPE_CHECKING:
    from xpnet.training._loop import Run

__all__ = [
    "CheckpointSaver",
    "flat_state",
    "generator_state",
    "nested_state",
    "restore_generator",
    "take_up",
]


class CheckpointSaver:
    """A run's record, and its checkpoint written when due (and not twice at one step)."""

    def __init__(
        self, run: Run, checkpointing: Checkpointing | None, data: JSONObject, threads: int
    ):
        self.run, self.checkpointing, self.data, self.threads = run, checkpointing, data, threads
        #: The step of the last checkpoint in the file, and the file, where there is one:
        #: a resumed run's, if it writes where it read; None for a fresh run's.
        self.saved_at: int | None = None
        self.saved: Path | None = None
        resumed = run.resumed_from
        if checkpointing is not None and resumed is not None and \
                _same_file(resumed.path, Path(checkpointing.path)):  # fmt: skip
            self.saved_at, self.saved = resumed.iterations, Path(checkpointing.path)
        if checkpointing is not None:
            _remove_stale_parts(Path(checkpointing.path))

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
        """Write the checkpoint of the run as it is now (a consistent point), unless the
        file holds this step already; return the file (None: it holds no checkpoint of
        this run). Parameters that are no longer finite are not written (the run's
        divergence check tells of them): the previous checkpoint stays. A write that
        fails warns, and leaves the previous file whole."""
        run, checkpointing = self.run, self.checkpointing
        if checkpointing is None or self.saved_at == run.record.iterations:
            return self.saved
        if not run.record.finite(run.params):
            return self.saved
        history = run.record.history()
        state: JSONObject = {
            "iterations": run.record.iterations,
            "checked": run.record.checked,
            "seed": run.seed,
            "rng_state": run.rng_state,
            **(run.best.state() if run.best is not None else BestEpoch.NONE),
            "data": self.data,
        }
        best = run.best.best_params if run.best is not None else None
        try:
            write_checkpoint(checkpointing, run.params, flat_state(run.state["optimizer"]),
                             self.record(history), state, history, best,
                             run.lab_rows)  # fmt: skip
        except OSError as err:
            kept = "no checkpoint of this run was written before" if self.saved_at is None \
                else f"the previous one (step {self.saved_at}) is whole"  # fmt: skip
            goes_on = "" if final else "; training goes on"
            warnings.warn(
                f"could not write the checkpoint {checkpointing.path} at step "
                f"{run.record.iterations} ({err.strerror or err}); {kept}{goes_on}",
                RuntimeWarning, stacklevel=2,
            )  # fmt: skip
            return self.saved
        self.saved_at, self.saved = run.record.iterations, Path(checkpointing.path)
        return self.saved


def _remove_stale_parts(path: Path) -> None:
    """Remove the temporary files a write of the checkpoint ``path`` left when a kill cut
    it short (``.NAME.*.part`` beside the file it replaces, a symlink followed); what
    cannot be removed stays, and the run goes on."""
    target = Path(os.path.realpath(path))
    with contextlib.suppress(OSError):
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
            if stale.is_file() and not stale.is_symlink():
                with contextlib.suppress(OSError):
                    stale.unlink()


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (both existing), or are the same path."""
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def restore_generator(rng: np.random.Generator | None, resume: Checkpoint) -> None:
    """Give ``rng`` the state it had after the checkpoint's run drew its seed.

    Raises
    ------
    ValueError
        If the run had a generator and ``rng`` is None, or the other way round.
    """
    if (rng is None) != (resume.rng_state is None):
        had = "from a generator" if resume.rng_state is not None else \
            "from NumPy's global state (no generator)"  # fmt: skip
        raise ValueError(
            f"cannot resume from {resume.path}: its run drew its seed {had}; resume on a "
            "network made as the checkpoint's was (with its seed, or without one)"
        )
    if rng is None or resume.rng_state is None:
        return
    try:
        rng.bit_generator.state = resume.rng_state
    except Exception as err:  # whatever a bad state makes NumPy raise (OverflowError too)
        raise ModelFileError(
            f"{resume.path}: its generator state does not fit this network's generator "
            f"({err}): corrupt, or written by another kind of generator"
        ) from None


def flat_state(state: Mapping[str, Array | Mapping[str, Array]]) -> dict[str, Array]:
    """An optimiser's state by flat name: ``{"velocity": {"W1": a}}`` as ``{"velocity.W1": a}``."""
    flat: dict[str, Array] = {}
    for name, value in state.items():
        if isinstance(value, Mapping):
            flat.update({f"{name}.{key}": array for key, array in value.items()})
        else:
            flat[name] = value
    return flat


def nested_state(flat: Mapping[str, Array]) -> dict[str, Array | dict[str, Array]]:
    """The inverse of :func:`flat_state`."""
    state: dict[str, Array | dict[str, Array]] = {}
    for name, array in flat.items():
        outer, _, inner = name.partition(".")
        if not inner:
            state[outer] = array
            continue
        nested = state.setdefault(outer, {})
        assert isinstance(nested, dict)  # the names of one state are all flat or all dotted
        nested[inner] = array
    return state


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
    # Copies: the run updates its arrays in place, and the checkpoint may be resumed again.
    copies = {name: backend.asarray(np.array(values), dtype)
              for name, values in resume.optimizer.items()}  # fmt: skip
    run.state["optimizer"] = nested_state(copies)  # type: ignore[typeddict-item]
    losses = backend.asarray(np.asarray(resume.history["loss_history"]), dtype)
    run.record.resume(losses, resume.history, resume.checked)
    if run.best is not None:
        best = resume.best_params
        run.best.resume(resume.best_acc, resume.best_epoch, resume.stopped_epoch,
                        None if best is None else map_params(
                            lambda p: backend.asarray(np.array(p), dtype), best))  # fmt: skip
