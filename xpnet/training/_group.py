"""A group of networks trained together: their stacked state and the loop that runs it.

:func:`~xpnet.training.fit_many` makes one :class:`Group` of the networks that can share a
program (:func:`~xpnet.training.group_key`). Their parameters are stacked, padded with
zeros to the largest hidden size; their hyperparameters are (K,) arrays; each draws from
its own streams. The loop runs the group's runner chunk by chunk, as
:func:`~xpnet.training.fit` does for one network, and keeps each member's own record: the
epoch accuracies, the divergence checks (every ``min(per_epoch, 100)`` iterations, and at
a member's end), and where each member stopped: at its own ``num_iters``, at the
iteration its loss stopped being finite, or where ``on_epoch`` stopped it. A member that
has stopped is computed on with the others (its numbers ignored) until a quarter of the
stack has stopped; the stack is then cut to those still training (and to the largest
hidden size among them), so that a search's pruned trials cost nothing more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xpnet._typing import Array, ArrayLike, JSONObject, Params, map_params
from xpnet.backend import product_size, resolve_threads, to_numpy, using_threads
from xpnet.functional import L2_WEIGHTS, forward, one_hot
from xpnet.metrics import accuracy
from xpnet.optim import make_optimizer
from xpnet.training._randomness import BatchSampler, DrawnAhead, Members, stream_keys
from xpnet.training._record import (
    History,
    Rates,
    TrainResult,
    chunks,
    copied,
    divergence_message,
    learning_rates,
)
from xpnet.training._runners import EagerRunner, compiled_runner_kind, select_runner
from xpnet.training._settings import TrainSettings
from xpnet.training._stack import (
    LossLog,
    cut,
    lab_rows_needed,
    member,
    padded_rows,
    restacked,
    stacked,
)
from xpnet.training._step import TrainState, TrainStep

__all__ = ["Group", "GroupEpochCallback"]

#: ``on_epoch(epoch, val_accs) -> stop``: after each epoch of a group, with a validation
#: accuracy for each of ``fit_many``'s networks (None for one of another group, one that
#: has stopped, or without validation data); it returns the indices of those to stop.
GroupEpochCallback = Callable[[int, "list[float | None]"], "Sequence[int] | None"]


@dataclass
class _Member:
    """A member's own record: its end, where it stopped and why, and what it keeps."""

    num_iters: int
    stopped_at: int | None = None  # the iteration after which it trains no more
    diverged_at: int | None = None
    divergence: str | None = None  # what fit's TrainingDivergedError would have said
    stopped_epoch: int | None = None
    kept: Params | None = None  # its parameters where it stopped
    epochs: int | None = None  # the epochs' accuracies its record keeps (None: all)


@dataclass
class _Checks:
    """Where the group's divergence checks stand: the iteration of the last one, and every
    member's parameters there (what one that diverges after it keeps)."""

    kept: Params
    checked: int = 0


class Group:
    """K networks that share a program (:func:`~xpnet.training.group_key`), stacked, and
    their loop; ``seeds`` holds each one's seed and, for a network without a generator,
    the lab's batches it drew.

    Members are numbered 0 to K - 1 as ``settings`` gives them; ``ids`` names those the
    stack holds now, in its order (all of them until some have stopped)."""

    def __init__(
        self, params: list[Params], settings: list[TrainSettings],
        seeds: list[tuple[int, np.ndarray | None]],
        data: tuple[Array, Array, tuple[Array, Array] | None], blank: ArrayLike | None,
    ) -> None:  # fmt: skip
        first = settings[0]
        backend = first.compute.resolved
        xp, dtype, device = backend.xp, backend.dtype(first.compute.dtype), backend.device
        self.xp, self.backend, self.dtype, self.settings = xp, backend, dtype, settings
        self.X, self.y, self.validation = data  # checked
        self.sizes = tuple(s.hidden_size for s in settings)
        H = max(self.sizes)

        def each(values: list[float]) -> Array:
            return backend.asarray(np.asarray(values, dtype=np.float64), dtype)

        keys = [stream_keys(xp, seed, device) for seed, _ in seeds]
        rows_needed = lab_rows_needed(settings, int(self.X.shape[0]))
        self.samplers = [
            BatchSampler(xp, own["key_batch"], self.X.shape[0], first.batch_size, first.shuffle,
                         None if rows is None else backend.asarray(padded_rows(rows, rows_needed)))
            for own, (_, rows) in zip(keys, seeds, strict=True)
        ]  # fmt: skip
        self.data = {
            "X": self.X,
            "T": one_hot(xp, self.y, first.output_size, dtype),
            "blank": backend.asarray(np.zeros(first.input_size) if blank is None else blank, dtype),
            **{name: xp.stack([own[name] for own in keys]) for name in keys[0]},
            **(first.augment.constants(xp, dtype, device) if first.augment else {}),
            "reg": each([s.reg for s in settings]),
            "momentum": each([s.momentum for s in settings]),
            "weight_decay": each([s.weight_decay or 0.0 for s in settings]),
            "dropout_scale": each([1 / (1 - s.dropout) for s in settings]),
        }
        dropouts = tuple(s.dropout for s in settings)
        update = make_optimizer(first.optimizer, momentum=max(s.momentum for s in settings),
                                reg=max(s.reg for s in settings),
                                weight_decay=max(s.weight_decay or 0.0 for s in settings),
                                decayed=frozenset(L2_WEIGHTS))  # fmt: skip
        self.ids = list(range(len(settings)))
        #: the data's arrays with one row per member of the stack
        self.per_member = [*keys[0], "reg", "momentum", "weight_decay", "dropout_scale"]
        self.step = TrainStep(xp, update, max(s.reg for s in settings), max(dropouts),
                              first.augment, Members(self.sizes, dropouts))  # fmt: skip
        # CUDA graphs of a stacked step failed to capture on an H200 at K = 64 (cuBLAS's
        # strided-batched product, CUBLAS_STATUS_EXECUTION_FAILED): a group on torch's CUDA
        # runs eagerly unless compile=True asks for the graphs
        self.compile = first.compile
        if self.compile == "auto" and len(settings) > 1 and backend.compiled_path == "cuda graph":
            self.compile = False
        self.runner = select_runner(backend, self.step, self.compile)
        # fit's chunks, at whose ends its divergence checks fall: those of the runner each
        # member alone gets, which may be longer than this group's own (torch's CUDA)
        alone = compiled_runner_kind(backend) if first.compile is not False else None
        self.fit_chunk = (alone or EagerRunner).max_chunk
        stack = stacked(xp, [map_params(lambda p: backend.asarray(p, dtype), p)
                             for p in params], H)  # fmt: skip
        self.state: TrainState = {"params": stack, "optimizer": update.init(xp, stack)}
        self.drawn = self._drawn_ahead()
        self.size = product_size(first.batch_size, first.input_size, H)
        self.threads = resolve_threads(first.threads, self.size, backend)

    def run(
        self, indices: list[int], count: int, on_epoch: GroupEpochCallback | None
    ) -> list[TrainResult]:
        """Train the group; one result per member (``indices``: theirs among the ``count``
        networks of ``fit_many``, whose ``on_epoch`` is told of all of them)."""
        self.count = count
        with using_threads(self.threads, self.backend, self.size), np.errstate(all="ignore"):
            return self._loop(indices, on_epoch)

    def _loop(self, indices: list[int], on_epoch: GroupEpochCallback | None) -> list[TrainResult]:
        """:func:`~xpnet.training.fit`'s loop for K: the same chunks (cut again where a
        member ends), its divergence checks where it makes them, and, at an epoch's end,
        its order: the accuracies, a check if one is due, ``on_epoch``, and then a final
        check of each member that stops there. After that, the stack is cut to the members
        still training where a quarter of it has stopped."""
        xp = self.xp
        per_epoch = self.samplers[0].per_epoch
        members = [_Member(s.num_iters) for s in self.settings]
        total = max(m.num_iters for m in members)
        losses = LossLog(xp, self.ids, self.backend.device)
        accs: dict[str, list[tuple[list[int], Array]]] = {"train": [], "val": []}
        check_every = min(per_epoch, 100)
        run = _Checks(kept=copied(xp, self.state["params"]))  # every member's, at the last check
        done = 0
        while done < total and any(m.stopped_at is None for m in members):
            epoch, first = done // per_epoch, done
            batches = xp.stack([self.samplers[k].epoch(epoch) for k in self.ids], axis=1)
            length = min(per_epoch, total - first)
            steps = xp.arange(first, first + length, dtype=xp.int32, device=self.backend.device)
            rates = self._rates(per_epoch, first, length)
            ends = sorted({m.num_iters - first for m in members
                           if 0 < m.num_iters - first < length})  # fmt: skip
            pieces = chunks(length, first, self.fit_chunk, None)  # fit's
            for chunk, fits_end in cut(pieces, ends, self.runner.max_chunk):
                inputs = {"batch": batches[chunk, ...], "step": steps[chunk]}
                if self.drawn is not None:
                    inputs.update(self.drawn.take(batches, steps, chunk))
                self.state, chunk_losses = self.runner(self.state, self.data, inputs,
                                                       rates[chunk])  # fmt: skip
                losses.append(chunk_losses)
                done = first + chunk.stop
                if done % per_epoch == 0:  # each member's accuracy on its last batch, on validation
                    train = self._accuracies(self.X, self.y, batches[length - 1, ...])
                    accs["train"].append((list(self.ids), train))
                    if self.validation is not None:
                        accs["val"].append((list(self.ids), self._accuracies(*self.validation)))
                active = [k for k in self.ids if members[k].stopped_at is None]
                if fits_end and done - run.checked >= check_every:  # where fit checks
                    self._check(members, active, losses, run, done, len(accs["train"]),
                                rates.host[done - 1 - first])  # fmt: skip
                    run.kept, run.checked = copied(xp, self.state["params"]), done
                stopping = [k for k in active if members[k].stopped_at is None
                            and members[k].num_iters == done]  # fmt: skip
                asked = []
                if done % per_epoch == 0 and on_epoch is not None:
                    asked = self._ask(on_epoch, indices, members, accs["val"], done, per_epoch)
                    stopping += [k for k in asked if k not in stopping]
                if stopping:  # fit's final check, then each keeps its parameters as they are
                    if done > run.checked:
                        self._check(members, stopping, losses, run, done,
                                    len(accs["train"]), rates.host[done - 1 - first])  # fmt: skip
                    for k in stopping:
                        own = members[k]
                        if own.stopped_at is None:
                            own.stopped_at, own.epochs = done, len(accs["train"])
                            own.kept = member(xp, self.state["params"], self.ids.index(k),
                                              self.sizes[k])  # fmt: skip
                            if k in asked:
                                own.stopped_epoch = done // per_epoch
                training = [k for k in self.ids if members[k].stopped_at is None]
                if not training:
                    break  # all stopped: the rest of the epoch is no one's
                if 4 * (len(self.ids) - len(training)) >= len(self.ids):
                    kept = self._restack(training, run)
                    losses.restack(training, done)
                    batches = xp.take(batches, kept, axis=1)
                    rates = self._rates(per_epoch, first, length)
        return self._results(indices, members, losses, accs, done)

    def _rates(self, per_epoch: int, first: int, length: int) -> Rates:
        """The learning rates of the stack's members at the iterations ``first`` to ``first +
        length``, (length, K), on the host and on the device."""
        host = np.stack([learning_rates(s.schedule, s.learning_rate, s.learning_rate_decay,
                                        s.num_iters, per_epoch, first, first + length)
                         for s in (self.settings[k] for k in self.ids)], axis=1)  # fmt: skip
        return Rates(host, self.backend.asarray(host, dtype=self.dtype))

    def _restack(self, training: list[int], run: _Checks) -> Array:
        """Cut the stack to the members ``training`` (and the hidden layer to the largest of
        their sizes): their parameters, optimiser state, data rows and last check's
        parameters, and a step and runner for that many. Returns their old positions."""
        xp = self.xp
        kept = self.backend.asarray(np.asarray([self.ids.index(k) for k in training]))
        hidden = max(self.sizes[k] for k in training)
        optimizer = {name: restacked(xp, value, kept, hidden) if isinstance(value, dict) else value
                     for name, value in self.state["optimizer"].items()}  # fmt: skip
        self.state = {"params": restacked(xp, self.state["params"], kept, hidden),
                      "optimizer": optimizer}  # type: ignore[typeddict-item]  # fmt: skip
        run.kept = restacked(xp, run.kept, kept, hidden)
        for name in self.per_member:
            self.data[name] = xp.take(self.data[name], kept, axis=0)
        self.ids = training
        dropouts = tuple(self.settings[k].dropout for k in training)
        members = Members(tuple(self.sizes[k] for k in training), dropouts)
        # the masks are drawn where a member still training has dropout (its draws are
        # counted by the step: the same however many are drawn beside them)
        self.step = dataclasses.replace(self.step, dropout=max(dropouts), members=members)
        self.runner = select_runner(self.backend, self.step, self.compile)
        self.drawn = self._drawn_ahead()
        return kept

    def _drawn_ahead(self) -> DrawnAhead | None:
        """The draws of the stack's coming steps, where its runner takes them drawn ahead."""
        if not self.runner.draws_ahead:
            return None
        members = self.step.members
        assert members is not None
        return DrawnAhead(self.xp, self.data, max(members.hidden_sizes), dropout=self.step.dropout,
                          augment=self.step.augment, members=members)  # fmt: skip

    def _check(self, members: list[_Member], checking: list[int], losses: LossLog,
               run: _Checks, done: int, epochs: int, rates: np.ndarray) -> None:  # fmt: skip
        """Whether the members ``checking`` have finite losses since the last check and
        finite parameters: one wait on the device. One that has not stops at its first
        bad loss, with its parameters of the last check and the ``epochs`` accuracies
        recorded, and says what a run alone raises there (``rates``: each member's
        learning rate at the check's step, in the stack's order)."""
        xp, params = self.xp, self.state["params"]
        recent = losses.recent(run.checked, done)  # (steps, K)
        finite = [xp.all(xp.isfinite(recent), axis=0)]
        every = (params["W1"], params["b1"], params["W2"], params["b2"])
        finite += [xp.all(xp.reshape(xp.isfinite(p), (p.shape[0], -1)), axis=1) for p in every]
        ok = dict(zip(self.ids, to_numpy(xp.all(xp.stack(finite), axis=0)).tolist(), strict=True))
        for ids, rows in losses.earlier(run.checked, done):  # before the stack was last cut
            for column, k in enumerate(ids):
                ok[k] = ok.get(k, True) and bool(np.isfinite(rows[:, column]).all())
        for k in checking:
            if ok[k]:
                continue
            own, position = members[k], self.ids.index(k)
            own_losses = losses.of(k, run.checked, done)
            bad = np.flatnonzero(~np.isfinite(own_losses))
            own.diverged_at = own.stopped_at = run.checked + (
                int(bad[0]) if bad.size else int(own_losses.shape[0])
            )
            loss = float(own_losses[bad[0]]) if bad.size else None
            own.divergence = divergence_message(own.diverged_at, loss, float(rates[position]),
                                                run.checked)  # fmt: skip
            own.kept = member(xp, run.kept, position, self.sizes[k])
            own.epochs = epochs

    def _accuracies(self, X: Array, y: Array, batch: Array | None = None) -> Array:
        """Each member's accuracy on rows ``X`` (or on its rows ``batch`` names), (K,), in
        the stack's order."""
        xp, params = self.xp, self.state["params"]
        values = []
        for position, k in enumerate(self.ids):
            rows, labels = X, y
            if batch is not None:
                own = batch[position, :]
                rows, labels = xp.take(X, own, axis=0), xp.take(y, own, axis=0)
            _, scores = forward(xp, member(xp, params, position, self.sizes[k], copy=False), rows)
            values.append(accuracy(xp, labels, xp.argmax(scores, axis=1)))
        return xp.stack(values)

    def _ask(
        self, on_epoch: GroupEpochCallback, indices: list[int], members: list[_Member],
        val: list[tuple[list[int], Array]], done: int, per_epoch: int,
    ) -> list[int]:  # fmt: skip
        """``on_epoch`` at an epoch's end, told of the members still training (those whose
        last iteration ends it included, as a run alone calls it at its last epoch's end)
        among all ``fit_many``'s networks; the members it names."""
        told: list[float | None] = [None] * self.count
        if val:
            ids, values = val[-1]
            for k, value in zip(ids, to_numpy(values).tolist(), strict=True):
                told[indices[k]] = value if members[k].stopped_at is None else None
        stop = on_epoch(done // per_epoch, told) or ()
        return [
            indices.index(index)
            for index in stop
            if index in indices and members[indices.index(index)].stopped_at is None
        ]

    def _results(
        self, indices: list[int], members: list[_Member], losses: LossLog,
        accs: dict[str, list[tuple[list[int], Array]]], done: int,
    ) -> list[TrainResult]:  # fmt: skip
        xp = self.xp
        losses.restack([], done)  # every loss on the host
        host = {name: [(ids, to_numpy(values).astype(float).tolist()) for ids, values in epochs]
                for name, epochs in accs.items()}  # fmt: skip
        results = []
        for k, (own, s) in enumerate(zip(members, self.settings, strict=True)):
            iterations = done if own.stopped_at is None else own.stopped_at
            epochs = len(accs["train"]) if own.epochs is None else own.epochs
            history: History = {
                "loss_history": losses.of(k, 0, iterations).tolist(),
                "train_acc_history": [values[ids.index(k)] for ids, values
                                      in host["train"][:epochs]],
                "val_acc_history": [values[ids.index(k)] for ids, values in host["val"][:epochs]],
            }  # fmt: skip
            params = own.kept if own.kept is not None \
                else member(xp, self.state["params"], self.ids.index(k), self.sizes[k])  # fmt: skip
            record: JSONObject = {
                "settings": {**s.to_dict(), "num_train": int(self.X.shape[0])},
                "path": self.runner.name,
                "threads": self.threads,
                "iterations": iterations,
                "final_loss": history["loss_history"][-1] if iterations else None,
                "final_val_acc": history["val_acc_history"][-1]
                if history["val_acc_history"] else None,
                "together": len(members),
                "index": indices[k],
                "diverged_at": own.diverged_at,
                "divergence": own.divergence,
                "stopped_epoch": own.stopped_epoch,
            }  # fmt: skip
            results.append(TrainResult(params, history, record))
        return results
