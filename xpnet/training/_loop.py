"""The training loop: minibatch steps driven by validated :class:`TrainSettings`.

:func:`fit` is what ``TwoLayerNet.train`` runs. It checks the data (the settings were
checked when they were built), then, epoch by epoch, draws the batches on the device,
cuts the epoch into the chunks a runner executes without waiting on the device, records the
losses and accuracies, checks for divergence now and then, and stops cleanly on
Ctrl-C or when ``on_epoch`` says so. The step's math is
:class:`xpnet.neural_net.TrainStep`; this module only drives it.

Randomness: the run's seed is drawn once, at the start, from the network's NumPy
source (so ``seed=`` and ``np.random.seed`` decide it, and each ``train`` call of a
net gets new batches); every random number of the steps comes from
:mod:`xpnet.random` streams of that seed, on the device, counted by the step (batch
rows, dropout masks, distortions; a compiled step draws its own, the eager loop draws
them a few steps ahead). A network without a seed follows NumPy's global
state, as the lab's does: its batch rows are then the lab's ``np.random.choice``
draws (:func:`lab_rows`), made before the first step and moved to the device once,
so that the handout's numbers come out exactly. Nothing random is drawn on the host
once the steps have begun.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xpnet import _checks
from xpnet._interrupt import deferred_interrupt
from xpnet._typing import Array, Namespace, Params
from xpnet.backend import select_runner
from xpnet.errors import TrainingInterrupted
from xpnet.functional import L2_WEIGHTS, forward, one_hot
from xpnet.metrics import accuracy
from xpnet.neural_net import TrainStep, stream_keys
from xpnet.optim import make_optimizer
from xpnet.training._record import (
    BatchSampler,
    EpochCallback,
    History,
    ProgressCallback,
    Rates,
    RunRecord,
    chunks,
    lab_rows,
    learning_rates,
)
from xpnet.training._settings import TrainSettings

if TYPE_CHECKING:
    from xpnet.neural_net import TwoLayerNet

__all__ = ["fit"]

#: Iterations between the lines ``verbose=True`` prints, as the lab does.
PRINT_EVERY = 100
#: The eager loop draws the random numbers of up to this many steps in one call...
DRAW_AHEAD_STEPS = 16
#: ...and of at most this many elements a draw (dropout masks are B x H a step).
DRAW_AHEAD_ELEMENTS = 2**21


def fit(
    net: TwoLayerNet,
    settings: TrainSettings,
    X: Any,
    y: Any,
    X_val: Any = None,
    y_val: Any = None,
    *,
    verbose: bool = False,
    progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> History:
    """Train ``net`` in place by ``settings`` on rows ``X`` (N, D) and labels ``y`` (N,).

    As :meth:`xpnet.TwoLayerNet.train`, which documents the arguments, the history
    returned and the exceptions; ``settings`` must describe ``net`` (its sizes and
    compute settings).
    """
    if settings.sizes != net.sizes or settings.compute.resolved != net.backend:
        raise ValueError(
            f"the settings describe a {'-'.join(map(str, settings.sizes))} network on "
            f"{settings.compute.resolved}, not this {'-'.join(map(str, net.sizes))} one on "
            f"{net.backend}"
        )
    _checks.flag("verbose", verbose)
    _checks.optional_callable("progress", progress)
    _checks.optional_callable("on_epoch", on_epoch)
    X, y, validation = _checked_data(net, X, y, X_val, y_val)
    run = _Run(net, settings, X, y, validation)
    callbacks = [c for c in (progress, _LossPrinter(settings.num_iters) if verbose else None) if c]
    stopped = run.loop(callbacks, on_epoch, report_every=PRINT_EVERY if verbose else None)
    history = run.record.history()
    net.last_training = {
        "settings": {**settings.to_dict(), "num_train": int(X.shape[0])},
        "path": run.runner.name,
        "iterations": run.record.iterations,
        "final_loss": history["loss_history"][-1] if history["loss_history"] else None,
        "final_val_acc": history["val_acc_history"][-1] if history["val_acc_history"] else None,
    }
    if run.record.iterations < settings.num_iters and not stopped:
        raise TrainingInterrupted(run.record.iterations, history)
    return history


def _checked_data(
    net: TwoLayerNet, X: Any, y: Any, X_val: Any, y_val: Any
) -> tuple[Array, Array, tuple[Array, Array] | None]:
    """The training and validation data on the net's device, checked."""
    D, _, C = net.sizes
    X, _ = _checks.features(net.backend, X, D, net.dtype)
    y = _checks.labels(net.backend, y, X.shape[0], C)
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is None:
        return X, y, None
    X_val, _ = _checks.features(net.backend, X_val, D, net.dtype, name="X_val")
    y_val = _checks.labels(net.backend, y_val, X_val.shape[0], C, name="y_val")
    return X, y, (X_val, y_val)


class _Run:
    """One training run's state: the step, its runner, the sampler, the data, the record."""

    def __init__(
        self,
        net: TwoLayerNet,
        settings: TrainSettings,
        X: Array,
        y: Array,
        validation: tuple[Array, Array] | None,
    ) -> None:
        xp, backend, s = net.xp, net.backend, settings
        self.net, self.settings, self.X, self.y, self.validation = net, s, X, y, validation
        # reg is the loss's L2 term for every optimizer; weight_decay is AdamW's own.
        update = make_optimizer(s.optimizer, momentum=s.momentum, reg=s.reg,
                                weight_decay=s.weight_decay or 0.0,
                                decayed=frozenset(L2_WEIGHTS))  # fmt: skip
        self.step = TrainStep(xp, update, s.reg, s.dropout, s.augment)
        self.runner = select_runner(backend, self.step, s.compile)
        drawn = None
        if net._rng is np.random:  # no seed: the lab's batches, from NumPy's global state
            drawn = lab_rows(backend, net._rng, X.shape[0], s.batch_size, s.shuffle, s.num_iters)
        #: The run's seed: its random streams' keys are made from it.
        self.seed = _run_seed(net._rng)
        keys = stream_keys(xp, self.seed, net.device)
        self.sampler = BatchSampler(xp, keys["key_batch"], X.shape[0], s.batch_size, s.shuffle,
                                    drawn)  # fmt: skip
        D, H, C = net.sizes
        augment = s.augment
        self.data = {
            "X": X,
            "T": one_hot(xp, y, C, net.dtype),  # every row's one-hot target, built once
            "blank": _blank_row(net, D),
            **keys,
            **(augment.constants(xp, net.dtype, net.device) if augment is not None else {}),
        }
        self.state: dict[str, Any] = {"params": net.params,
                                      "optimizer": update.init(xp, net.params)}  # fmt: skip
        self.record = RunRecord(xp, net.params, check_every=min(self.sampler.per_epoch, 100))
        #: The eager loop's random numbers, drawn ahead; compiled steps draw their own.
        self.drawn = _DrawnAhead(self.step, self.data, H) if self.runner.draws_ahead else None

    def loop(
        self, callbacks: list[ProgressCallback], on_epoch: EpochCallback | None,
        report_every: int | None,
    ) -> bool:  # fmt: skip
        """Run the steps; return whether ``on_epoch`` stopped them. Chunks end after every
        iteration that is a multiple of ``report_every``, for the callbacks to see."""
        s, record, per_epoch = self.settings, self.record, self.sampler.per_epoch
        stopped, host_rates = False, np.zeros(1)
        # NaN and infinity are the run's to detect (RunRecord.check), not NumPy's to warn of.
        with deferred_interrupt() as interrupted, np.errstate(all="ignore"):
            while record.iterations < s.num_iters and not (stopped or interrupted()):
                first = record.iterations
                batches = self.sampler.epoch(first // per_epoch)
                length = min(per_epoch, s.num_iters - first)
                steps = self.net.xp.arange(first, first + length, dtype=self.net.xp.int32,
                                           device=self.net.device)  # fmt: skip
                host_rates = learning_rates(
                    s.schedule, s.learning_rate, s.learning_rate_decay, s.num_iters, per_epoch,
                    first, first + length,
                )  # fmt: skip
                rates = Rates(
                    host_rates, self.net.backend.asarray(host_rates, dtype=self.net.dtype)
                )
                for chunk in chunks(length, first, self.runner.max_chunk, report_every):
                    if interrupted():
                        break
                    epoch_end = self._run_chunk(batches, steps, chunk, rates, callbacks)
                    if epoch_end and on_epoch is not None:
                        stopped = bool(on_epoch(record.iterations // per_epoch,
                                                *record.epoch_summary(per_epoch)))  # fmt: skip
                        if stopped:
                            break
        if record.iterations > record.checked:
            self._check(float(host_rates[-1]))
        return stopped

    def _run_chunk(
        self, batches: Array, steps: Array, chunk: slice, rates: Rates,
        callbacks: list[ProgressCallback],
    ) -> bool:  # fmt: skip
        """Run one chunk of steps of an epoch; return whether the epoch ended with it."""
        xp, net, record = self.net.xp, self.net, self.record
        inputs = {"batch": batches[chunk, :], "step": steps[chunk]}
        if self.drawn is not None:
            inputs.update(self.drawn.take(batches, steps, chunk))
        self.state, losses = self.runner(self.state, self.data, inputs, rates[chunk])
        net.params = self.state["params"]
        record.add_losses(losses)
        rate = float(rates.host[chunk.stop - 1])
        epoch_end = record.iterations % self.sampler.per_epoch == 0  # chunks end there
        if epoch_end:  # the accuracy on the epoch's last batch, and on the validation set
            last = batches[chunk.stop - 1, :]
            X_last, y_last = xp.take(self.X, last, axis=0), xp.take(self.y, last, axis=0)
            validated = self.validation
            record.add_accuracies(
                _accuracy(xp, net.params, X_last, y_last),
                None if validated is None else _accuracy(xp, net.params, *validated),
            )
        for callback in callbacks:
            callback(record.iterations - 1, losses[-1], rate)
        if record.check_due:
            self._check(rate)
        return epoch_end

    def _check(self, learning_rate: float) -> None:
        """Check the run for divergence; on it, restore the checkpoint and raise."""
        if not self.record.check(self.net.params):
            self.net.params = self.record.checkpoint
            raise self.record.divergence(learning_rate)


class _DrawnAhead:
    """The random numbers of the eager loop's coming steps, drawn several steps at a time.

    One call of :mod:`xpnet.random` costs a fixed few hundred microseconds on NumPy
    (some 170 whole-array operations) however few numbers it makes: as much as a
    small network's whole step. Drawing ``K`` steps in one call pays it once; the
    numbers are those each step would draw alone (the generator is counted by the
    step), so nothing else changes: the loop still runs, reports and stops step by
    step.
    """

    def __init__(self, step: TrainStep, data: dict[str, Array], hidden_size: int) -> None:
        self.step, self.data, self.hidden_size = step, data, hidden_size
        self.block: dict[str, Array] = {}
        self.start = self.stop = 0  # the block's steps, as slice bounds within its epoch
        self.epoch_steps: Array | None = None

    def take(self, batches: Array, steps: Array, chunk: slice) -> dict[str, Array]:
        """The draws of the steps ``steps[chunk]`` of the epoch whose batches are
        ``batches`` (per_epoch, B), drawing the next block when they are not held."""
        if not self.step.draw_names:
            return {}
        held = steps is self.epoch_steps and self.start <= chunk.start and chunk.stop <= self.stop
        if not held:
            batch_size = batches.shape[1]
            per_step = batch_size * self.hidden_size  # a dropout mask, the largest draw
            size = max(1, min(DRAW_AHEAD_STEPS, DRAW_AHEAD_ELEMENTS // per_step))
            self.start = chunk.start
            self.stop = min(max(chunk.stop, chunk.start + size), steps.shape[0])
            self.epoch_steps = steps
            self.block = self.step.draw(
                self.data, steps[self.start : self.stop], batch_size, self.hidden_size
            )
        part = slice(chunk.start - self.start, chunk.stop - self.start)
        return {name: values[part, ...] for name, values in self.block.items()}


def _accuracy(xp: Namespace, params: Params, X: Array, y: Array) -> Array:
    """The accuracy on device rows ``X``, as a 0-d array on the device (no wait)."""
    _, scores = forward(xp, params, X)
    return accuracy(xp, y, xp.argmax(scores, axis=1))


def _run_seed(rng: Any) -> int:
    """A run's seed, one draw from the net's source (a Generator, or NumPy's global state)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    return int(rng.randint(2**63, dtype=np.int64))


def _blank_row(net: TwoLayerNet, D: int) -> Array:
    """The row of a blank image: what the preprocessing makes of zeros (zeros without one)."""
    if net.preprocessing is None:
        return net.backend.asarray(np.zeros(D), dtype=net.dtype)
    blank = net.preprocessing(np.zeros((1, D), dtype=np.float32))[0]
    return net.backend.asarray(blank, dtype=net.dtype)


class _LossPrinter:
    """``verbose=True``: print the loss every 100 iterations, as the lab does."""

    def __init__(self, num_iters: int):
        self.num_iters = num_iters

    def __call__(self, iteration: int, loss: Any, learning_rate: float) -> None:
        if iteration % PRINT_EVERY == 0:
            print(f"iteration {iteration} / {self.num_iters}: loss {float(loss):f}")
