"""The training loop: parameters, settings and data in; new parameters and a record out.

:func:`fit` checks the data (the settings were checked when they were built), then,
epoch by epoch, draws the batches on the device, cuts the epoch into the chunks a
runner executes without waiting on the device, records the losses and accuracies,
checks for divergence now and then, and stops cleanly on Ctrl-C, when ``on_epoch``
says so or when early stopping does (:class:`~xpnet.training._stopping.BestEpoch`, at
epoch ends, which every runner passes through), all on the CPU threads the settings
choose (restored after). The step's math is :class:`~xpnet.training._step.TrainStep`;
the run's random numbers are :mod:`~xpnet.training._randomness`'s; this module only
drives them.
"""

from __future__ import annotations

import signal

import numpy as np

from xpnet import _checks
from xpnet._interrupt import Interruption, deferred_interrupt
from xpnet._typing import Array, ArrayLike, Namespace, Params, map_params
from xpnet.backend import to_numpy, using_threads
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.functional import L2_WEIGHTS, forward, one_hot
from xpnet.metrics import accuracy
from xpnet.optim import make_optimizer
from xpnet.training._checkpoint import (
    Checkpoint,
    Checkpointing,
    data_record,
)
from xpnet.training._checkpointing import (
    CheckpointSaver,
    generator_state,
    restore_generator,
    take_up,
)
from xpnet.training._randomness import BatchSampler, DrawnAhead, lab_rows, run_seed, stream_keys
from xpnet.training._record import (
    ChunkCallback,
    EpochCallback,
    ProgressCallback,
    Rates,
    RunRecord,
    TrainResult,
    chunks,
    copied,
    learning_rates,
)
from xpnet.training._runners import select_runner
from xpnet.training._settings import TrainSettings
from xpnet.training._step import TrainState, TrainStep
from xpnet.training._stopping import BestEpoch, needs_validation

__all__ = ["fit"]

#: Iterations between the lines ``verbose=True`` prints, as the lab does.
PRINT_EVERY = 100


def fit(
    params: Params,
    settings: TrainSettings,
    X: ArrayLike,
    y: ArrayLike,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    *,
    rng: np.random.Generator | None,
    blank: ArrayLike | None = None,
    verbose: bool = False,
    progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
    on_chunk: ChunkCallback | None = None,
    checkpoint: Checkpointing | None = None,
    resume: Checkpoint | None = None,
) -> TrainResult:
    """Train ``params`` by ``settings`` on rows ``X`` (N, D) and labels ``y`` (N,).

    As :meth:`xpnet.TwoLayerNet.train`, which documents the data, the callbacks and the
    history; here the parameters go in and come out.

    Parameters
    ----------
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), arrays of
        ``settings.compute``'s backend, of the sizes ``settings`` describe. Left as they are.
    settings : TrainSettings
    X, y, X_val, y_val
        The training rows and labels, and the validation ones (both or neither).
    rng : numpy.random.Generator or None
        The source of the run's seed (one draw); None: NumPy's global state, which then
        draws the batch rows too, as the lab's ``np.random.choice`` does.
    blank : array, shape (D,), optional
        The row of a blank image (what the preprocessing makes of zeros), for the
        distortions; zeros when None.
    verbose, progress, on_epoch
        As for :meth:`xpnet.TwoLayerNet.train`.
    on_chunk : callable, optional
        ``on_chunk(params)`` after every chunk of steps, before ``progress`` and
        ``on_epoch``, with the parameters so far (arrays that later steps may update in
        place: copy what you keep).
    checkpoint : Checkpointing, optional
        Write the run's checkpoint (:mod:`xpnet.training._checkpoint`) every
        ``checkpoint.every`` epochs (before ``on_epoch``), at its end, and when it is
        stopped: by Ctrl-C or SIGTERM (both then stop it after the current step or
        chunk), or by an exception from a callback. A write that fails (a full disk)
        leaves the previous file whole and warns; the run goes on.
    resume : Checkpoint, optional
        Continue the run a checkpoint holds (:func:`~xpnet.training.read_checkpoint`),
        from its parameters (``params`` gives only the sizes) and its state: the result
        is that of the run never stopped, bit for bit. ``settings`` and the data must be
        the checkpoint's, but ``num_iters``, which may grow (to train longer; not with
        the cosine schedule, whose rates it sets, nor for a run without a seed, whose
        batches were drawn for its length). ``rng`` takes the state it had then.

    Returns
    -------
    TrainResult
        The new parameters, the history and the record of the run. With
        ``settings.early_stopping`` the run stops at the end of the ``patience``-th epoch
        in a row whose validation accuracy is not higher than the best so far (Keras's
        count, see :class:`~xpnet.training._stopping.BestEpoch`); with
        ``settings.restore_best`` the parameters are those of the best epoch. The record
        says ``stopped_epoch`` (None: it ran all its iterations) and ``kept_epoch``
        (None: the last step's parameters).

    Raises
    ------
    TypeError, ValueError
        For bad data or callbacks, or parameters of other sizes than the settings', or
        ``early_stopping`` or ``restore_best`` without validation data, or a ``resume``
        whose run differs from this one (the differences named).
    xpnet.errors.ModelFileError
        If ``resume``'s state does not fit its settings (a damaged file).
    xpnet.errors.TrainingDivergedError
        With the parameters of the last check with finite values.
    xpnet.errors.TrainingInterrupted
        On Ctrl-C (or SIGTERM, with ``checkpoint``), with the parameters and the record
        after the last whole step (eager) or chunk (compiled), and where the checkpoint
        of that point was written.
    """
    sizes = (*params["W1"].shape, params["W2"].shape[1])
    if sizes != settings.sizes:
        raise ValueError(
            f"the parameters are those of a {'-'.join(map(str, sizes))} network; the "
            f"settings describe a {'-'.join(map(str, settings.sizes))} one"
        )
    if resume is None:  # a resumed run's generator is checked against its checkpoint's
        settings.check_generator(rng)
    _checks.flag("verbose", verbose)
    for name, callback in (("progress", progress), ("on_epoch", on_epoch),
                           ("on_chunk", on_chunk)):  # fmt: skip
        _checks.optional_callable(name, callback)
    X, y, validation = checked_data(settings, X, y, X_val, y_val)
    if checkpoint is not None and not isinstance(checkpoint, Checkpointing):
        raise TypeError(f"checkpoint must be a Checkpointing, got {checkpoint!r}")
    if resume is not None and not isinstance(resume, Checkpoint):
        raise TypeError(f"resume must be a Checkpoint (read_checkpoint(path)), got {resume!r}")
    data = data_record(X, y, validation) if checkpoint or resume else {}
    if resume is not None:
        resume.check_resumable(settings, int(X.shape[0]), data)
    callbacks = [c for c in (progress, _LossPrinter(settings.num_iters) if verbose else None) if c]
    with using_threads(settings.thread_count(), settings.compute.resolved,
                       settings.largest_product()) as threads, \
            deferred_interrupt(terminate=checkpoint is not None) as interruption:  # fmt: skip
        run = Run(params, settings, X, y, validation, rng, blank, resume)
        saver = CheckpointSaver(run, checkpoint, data, threads)
        try:
            stopped = run.loop(callbacks, on_epoch, on_chunk, interruption, saver,
                               report_every=PRINT_EVERY if verbose else None)  # fmt: skip
        except TrainingDivergedError:
            raise
        except BaseException:  # a callback's exception, or a second Ctrl-C mid-step
            if run.consistent:
                saver.save(final=True)
            raise
        finished = stopped or run.record.iterations >= settings.num_iters
        written = saver.save(final=True)
    history = run.record.history()
    record = saver.record(history)
    if not finished:
        raise TrainingInterrupted(run.record.iterations, history, run.params, record,
                                  interruption.signal or signal.SIGINT, written)  # fmt: skip
    kept = run.best.best_params if run.best is not None else None
    return TrainResult(run.params if kept is None else kept, history, record)


def checked_data(
    settings: TrainSettings, X: ArrayLike, y: ArrayLike, X_val: ArrayLike | None,
    y_val: ArrayLike | None,
) -> tuple[Array, Array, tuple[Array, Array] | None]:  # fmt: skip
    """The training and validation data on the settings' device, checked."""
    backend = settings.compute.resolved
    dtype = backend.dtype(settings.compute.dtype)
    D, _, C = settings.sizes
    X, _ = _checks.features(backend, X, D, dtype)
    y = _checks.labels(backend, y, X.shape[0], C)
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is None:
        needing = needs_validation(settings.early_stopping, settings.restore_best)
        if needing is not None:
            raise ValueError(
                f"{needing}=True watches the validation accuracy, but there is no validation "
                f"set: give X_val and y_val, or leave {needing} False"
            )
        return X, y, None
    X_val, _ = _checks.features(backend, X_val, D, dtype, name="X_val")
    y_val = _checks.labels(backend, y_val, X_val.shape[0], C, name="y_val")
    return X, y, (X_val, y_val)


class Run:
    """One training run's state: the step, its runner, the sampler, the data, the record."""

    def __init__(
        self,
        params: Params,
        settings: TrainSettings,
        X: Array,
        y: Array,
        validation: tuple[Array, Array] | None,
        rng: np.random.Generator | None,
        blank: ArrayLike | None,
        resume: Checkpoint | None = None,
    ) -> None:
        s, backend = settings, settings.compute.resolved
        xp, device, dtype = backend.xp, backend.device, backend.dtype(s.compute.dtype)
        self.xp, self.backend, self.dtype = xp, backend, dtype
        self.settings, self.X, self.y, self.validation = s, X, y, validation
        # reg is the loss's L2 term for every optimizer; weight_decay is AdamW's own.
        update = make_optimizer(s.optimizer, momentum=s.momentum, reg=s.reg,
                                weight_decay=s.weight_decay or 0.0,
                                decayed=frozenset(L2_WEIGHTS))  # fmt: skip
        self.step = TrainStep(xp, update, s.reg, s.dropout, s.augment)
        self.runner = select_runner(backend, self.step, s.compile)
        if resume is None:
            # Without a generator, the lab's batches from NumPy's global state, then the seed.
            drawn = lab_rows(backend, X.shape[0], s.batch_size, s.shuffle, s.num_iters) \
                if rng is None else None  # fmt: skip
            self.seed = run_seed(rng)
        else:
            drawn = None if resume.lab_rows is None else backend.asarray(resume.lab_rows)
            self.seed = resume.seed
            restore_generator(rng, resume)
        #: The generator's state after the run drew its seed, for a checkpoint.
        self.rng_state = None if rng is None else generator_state(rng.bit_generator.state)
        self.lab_rows = drawn
        keys = stream_keys(xp, self.seed, device)
        self.sampler = BatchSampler(xp, keys["key_batch"], X.shape[0], s.batch_size, s.shuffle,
                                    drawn)  # fmt: skip
        augment = s.augment
        self.data = {
            "X": X,
            "T": one_hot(xp, y, s.output_size, dtype),  # every row's one-hot target, built once
            "blank": backend.asarray(np.zeros(s.input_size) if blank is None else blank, dtype),
            **keys,
            **(augment.constants(xp, dtype, device) if augment is not None else {}),
        }
        on_device = map_params(lambda p: backend.asarray(p, dtype), resume.params) \
            if resume is not None else params  # fmt: skip
        self.record = RunRecord(xp, on_device, check_every=min(self.sampler.per_epoch, 100))
        start = copied(xp, on_device)  # the run's own arrays: the caller's stay as they are
        self.state: TrainState = {"params": start, "optimizer": update.init(xp, start)}
        self.best = BestEpoch(xp, s.early_stopping, s.patience, s.restore_best) \
            if needs_validation(s.early_stopping, s.restore_best) else None  # fmt: skip
        #: Whether the state is that after a whole step (or chunk), recorded: a checkpoint's.
        self.consistent = True
        #: The checkpoint the run goes on from (None: it starts afresh).
        self.resumed_from = resume
        if resume is not None:
            take_up(self, resume)
        #: The eager loop's random numbers, drawn ahead; compiled steps draw their own.
        self.drawn = DrawnAhead(xp, self.data, s.hidden_size, dropout=s.dropout,
                                augment=augment) if self.runner.draws_ahead else None  # fmt: skip

    @property
    def stopped_epoch(self) -> int | None:
        """Where early stopping stopped the run (None: it has not, or has no early stopping)."""
        return None if self.best is None else self.best.stopped_epoch

    @property
    def params(self) -> Params:
        """The parameters so far."""
        return self.state["params"]

    def loop(
        self, callbacks: list[ProgressCallback], on_epoch: EpochCallback | None,
        on_chunk: ChunkCallback | None, interrupted: Interruption, saver: CheckpointSaver,
        report_every: int | None,
    ) -> bool:  # fmt: skip
        """Run the steps; return whether ``on_epoch`` or early stopping stopped them.
        Chunks end after every iteration that is a multiple of ``report_every``, for the
        callbacks to see (and after every epoch, where early stopping looks). A resumed
        run cuts its first epoch as the run it continues did, from the epoch's start."""
        s, record, per_epoch, xp = self.settings, self.record, self.sampler.per_epoch, self.xp
        stopped, host_rates = self.stopped_epoch is not None, np.zeros(1)
        # NaN and infinity are the run's to detect (RunRecord.check), not NumPy's to warn of.
        with np.errstate(all="ignore"):
            while record.iterations < s.num_iters and not (stopped or interrupted()):
                epoch = record.iterations // per_epoch
                first, done = epoch * per_epoch, record.iterations - epoch * per_epoch
                batches = self.sampler.epoch(epoch)
                length = min(per_epoch, s.num_iters - first)
                steps = xp.arange(first, first + length, dtype=xp.int32,
                                  device=self.backend.device)  # fmt: skip
                host_rates = learning_rates(
                    s.schedule, s.learning_rate, s.learning_rate_decay, s.num_iters, per_epoch,
                    first, first + length,
                )  # fmt: skip
                rates = Rates(host_rates, self.backend.asarray(host_rates, dtype=self.dtype))
                for chunk in chunks(length, first, self.runner.max_chunk, report_every):
                    if chunk.stop <= done:  # taken before the checkpoint
                        continue
                    if interrupted():
                        break
                    chunk = slice(max(chunk.start, done), chunk.stop)
                    epoch_end, stopped = self._run_chunk(batches, steps, chunk, rates, callbacks,
                                                         on_chunk)  # fmt: skip
                    if epoch_end:  # the epoch's checkpoint (a stopped run's: at its end)
                        if not stopped:
                            saver.save_after_epoch(record.iterations // per_epoch)
                        if on_epoch is not None:  # every epoch's, the one that stops it too
                            asked = on_epoch(record.iterations // per_epoch,
                                             *record.epoch_summary(per_epoch))  # fmt: skip
                            stopped = stopped or bool(asked)
                    if stopped:
                        break
        if record.iterations > record.checked:
            self._check(float(host_rates[-1]))
        return stopped

    def _run_chunk(
        self, batches: Array, steps: Array, chunk: slice, rates: Rates,
        callbacks: list[ProgressCallback], on_chunk: ChunkCallback | None,
    ) -> tuple[bool, bool]:  # fmt: skip
        """Run one chunk of steps of an epoch; return whether the epoch ended with it, and
        whether early stopping stops the run there."""
        xp, record = self.xp, self.record
        inputs = {"batch": batches[chunk, :], "step": steps[chunk]}
        if self.drawn is not None:
            inputs.update(self.drawn.take(batches, steps, chunk))
        self.consistent = False  # until the chunk's steps are recorded
        self.state, losses = self.runner(self.state, self.data, inputs, rates[chunk])
        record.add_losses(losses)
        rate = float(rates.host[chunk.stop - 1])
        epoch_end = record.iterations % self.sampler.per_epoch == 0  # chunks end there
        stop = False
        if epoch_end:  # the accuracy on the epoch's last batch, and on the validation set
            last = batches[chunk.stop - 1, :]
            X_last, y_last = xp.take(self.X, last, axis=0), xp.take(self.y, last, axis=0)
            validated = self.validation
            record.add_accuracies(
                _accuracy(xp, self.params, X_last, y_last),
                None if validated is None else _accuracy(xp, self.params, *validated),
            )
            stop = self._best_says_stop()
        self.consistent = True
        if on_chunk is not None:
            on_chunk(self.params)
        for callback in callbacks:
            callback(record.iterations - 1, losses[-1], rate)
        if record.check_due:
            self._check(rate)
        return epoch_end, stop

    def _best_says_stop(self) -> bool:
        """At an epoch end, with early stopping or restore_best: one wait for the
        validation accuracy; whether the run stops here."""
        if self.best is None:
            return False
        epoch = self.record.iterations // self.sampler.per_epoch
        val_acc = float(to_numpy(self.record.val_accs[-1]))
        return self.best.update(epoch, val_acc, self.params)

    def _check(self, learning_rate: float) -> None:
        """Check the run for divergence; on it, raise with the last finite parameters."""
        if not self.record.check(self.params):
            raise self.record.divergence(learning_rate)


def _accuracy(xp: Namespace, params: Params, X: Array, y: Array) -> Array:
    """The accuracy on device rows ``X``, as a 0-d array on the device (no wait)."""
    _, scores = forward(xp, params, X)
    return accuracy(xp, y, xp.argmax(scores, axis=1))


class _LossPrinter:
    """``verbose=True``: print the loss every 100 iterations, as the lab does."""

    def __init__(self, num_iters: int):
        self.num_iters = num_iters

    def __call__(self, iteration: int, loss: Array, learning_rate: float) -> None:
        if iteration % PRINT_EVERY == 0:
            print(f"iteration {iteration} / {self.num_iters}: loss {float(loss):f}")
