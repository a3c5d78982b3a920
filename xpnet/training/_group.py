"""A group of networks trained together: their stacked state and the loop that runs it.

:func:`~xpnet.training.fit_many` makes one :class:`Group` of the networks that can share a
program (:func:`~xpnet.training.group_key`). Their parameters are stacked, padded with
zeros to the largest hidden size; their hyperparameters are (K,) arrays; each draws from
its own streams. The loop runs the group's runner chunk by chunk, as
:func:`~xpnet.training.fit` does for one network, and keeps each member's own record: the
epoch accuracies, the divergence checks (every ``min(per_epoch, 100)`` iterations, and at
a member's end), and where each member stopped: at its own ``num_iters``, at the
iteration its loss stopped being finite, or where ``on_epoch`` stopped it. A member that
has stopped is computed on with the others (its numbers ignored) until all have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from xpnet._typing import Array, ArrayLike, JSONObject, Namespace, Params, map_params
from xpnet.backend import device_of, product_size, resolve_threads, to_numpy, using_threads
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
    iterations_per_epoch,
    learning_rates,
)
from xpnet.training._runners import EagerRunner, compiled_runner_kind, select_runner
from xpnet.training._settings import TrainSettings
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
    the lab's batches it drew."""

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
        rows_needed = _lab_rows_needed(settings, int(self.X.shape[0]))
        self.samplers = [
            BatchSampler(xp, own["key_batch"], self.X.shape[0], first.batch_size, first.shuffle,
                         None if rows is None else backend.asarray(_padded_rows(rows, rows_needed)))
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
        members = Members(self.sizes, dropouts)
        self.step = TrainStep(xp, update, max(s.reg for s in settings), max(dropouts),
                              first.augment, members)  # fmt: skip
        # CUDA graphs of a stacked step failed to capture on an H200 at K = 64 (cuBLAS's
        # strided-batched product, CUBLAS_STATUS_EXECUTION_FAILED): a group on torch's CUDA
        # runs eagerly unless compile=True asks for the graphs
        compile = first.compile
        if compile == "auto" and len(settings) > 1 and backend.compiled_path == "cuda graph":
            compile = False
        self.runner = select_runner(backend, self.step, compile)
        # fit's chunks, at whose ends its divergence checks fall: those of the runner each
        # member alone gets, which may be longer than this group's own (torch's CUDA)
        alone = compiled_runner_kind(backend) if first.compile is not False else None
        self.fit_chunk = (alone or EagerRunner).max_chunk
        stacked = _stacked(xp, [map_params(lambda p: backend.asarray(p, dtype), p)
                                for p in params], H)  # fmt: skip
        self.state: TrainState = {"params": stacked, "optimizer": update.init(xp, stacked)}
        self.drawn = DrawnAhead(xp, self.data, H, dropout=max(dropouts), augment=first.augment,
                                members=members) if self.runner.draws_ahead else None  # fmt: skip
        size = product_size(first.batch_size, first.input_size, H)
        self.threads = resolve_threads(first.threads, size, backend)

    def run(
        self, indices: list[int], count: int, on_epoch: GroupEpochCallback | None
    ) -> list[TrainResult]:
        """Train the group; one result per member (``indices``: theirs among the ``count``
        networks of ``fit_many``, whose ``on_epoch`` is told of all of them)."""
        self.count = count
        with using_threads(self.threads, self.backend), np.errstate(all="ignore"):
            return self._loop(indices, on_epoch)

    def _loop(self, indices: list[int], on_epoch: GroupEpochCallback | None) -> list[TrainResult]:
        """:func:`~xpnet.training.fit`'s loop for K: the same chunks (cut again where a
        member ends), its divergence checks where it makes them, and, at an epoch's end,
        its order: the accuracies, a check if one is due, ``on_epoch``, and then a final
        check of each member that stops there."""
        xp = self.xp
        per_epoch = self.samplers[0].per_epoch
        members = [_Member(s.num_iters) for s in self.settings]
        total = max(m.num_iters for m in members)
        losses: list[Array] = []
        accs: dict[str, list[Array]] = {"train": [], "val": []}
        check_every = min(per_epoch, 100)
        run = _Checks(kept=copied(xp, self.state["params"]))  # every member's, at the last check
        done = 0
        while done < total and any(m.stopped_at is None for m in members):
            epoch, first = done // per_epoch, done
            batches = xp.stack([sampler.epoch(epoch) for sampler in self.samplers], axis=1)
            length = min(per_epoch, total - first)
            steps = xp.arange(first, first + length, dtype=xp.int32, device=self.backend.device)
            host = np.stack([learning_rates(s.schedule, s.learning_rate, s.learning_rate_decay,
                                            s.num_iters, per_epoch, first, first + length)
                             for s in self.settings], axis=1)  # fmt: skip
            rates = Rates(host, self.backend.asarray(host, dtype=self.dtype))
            ends = sorted({m.num_iters - first for m in members
                           if 0 < m.num_iters - first < length})  # fmt: skip
            pieces = chunks(length, first, self.fit_chunk, None)  # fit's
            for chunk, fits_end in _cut(pieces, ends, self.runner.max_chunk):
                inputs = {"batch": batches[chunk, ...], "step": steps[chunk]}
                if self.drawn is not None:
                    inputs.update(self.drawn.take(batches, steps, chunk))
                self.state, chunk_losses = self.runner(self.state, self.data, inputs,
                                                       rates[chunk])  # fmt: skip
                losses.append(chunk_losses)
                done = first + chunk.stop
                if done % per_epoch == 0:  # each member's accuracy on its last batch, on validation
                    accs["train"].append(self._accuracies(self.X, self.y, batches[length - 1, ...]))
                    if self.validation is not None:
                        accs["val"].append(self._accuracies(*self.validation))
                active = [k for k, m in enumerate(members) if m.stopped_at is None]
                if fits_end and done - run.checked >= check_every:  # where fit checks
                    self._check(members, active, losses, run, done, len(accs["train"]),
                                host[done - 1 - first])  # fmt: skip
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
                                    len(accs["train"]), host[done - 1 - first])  # fmt: skip
                    for k in stopping:
                        member = members[k]
                        if member.stopped_at is None:
                            member.stopped_at, member.epochs = done, len(accs["train"])
                            member.kept = _member(xp, self.state["params"], k, self.sizes[k])
                            if k in asked:
                                member.stopped_epoch = done // per_epoch
                if all(m.stopped_at is not None for m in members):
                    break  # all stopped: the rest of the epoch is no one's
        return self._results(indices, members, losses, accs, done)

    def _check(self, members: list[_Member], checking: list[int], losses: list[Array],
               run: _Checks, done: int, epochs: int, rates: np.ndarray) -> None:  # fmt: skip
        """Whether the members ``checking`` have finite losses since the last check and
        finite parameters: one wait on the device. One that has not stops at its first
        bad loss, with its parameters of the last check and the ``epochs`` accuracies
        recorded, and says what a run alone raises there (``rates``: each member's
        learning rate at the check's step)."""
        xp, params = self.xp, self.state["params"]
        losses[:] = [xp.concat(losses)]  # each loss joined once
        recent = losses[0][run.checked : done, ...]  # (steps, K)
        finite = [xp.all(xp.isfinite(recent), axis=0)]
        every = (params["W1"], params["b1"], params["W2"], params["b2"])
        finite += [xp.all(xp.reshape(xp.isfinite(p), (p.shape[0], -1)), axis=1) for p in every]
        ok = to_numpy(xp.all(xp.stack(finite), axis=0))
        if all(ok[k] for k in checking):
            return
        host_losses = to_numpy(recent)
        for k in checking:
            if not ok[k]:
                bad = np.flatnonzero(~np.isfinite(host_losses[:, k]))
                member = members[k]
                member.diverged_at = member.stopped_at = run.checked + (
                    int(bad[0]) if bad.size else int(recent.shape[0])
                )
                loss = float(host_losses[bad[0], k]) if bad.size else None
                member.divergence = divergence_message(member.diverged_at, loss,
                                                       float(rates[k]), run.checked)  # fmt: skip
                member.kept, member.epochs = _member(xp, run.kept, k, self.sizes[k]), epochs

    def _accuracies(self, X: Array, y: Array, batch: Array | None = None) -> Array:
        """Each member's accuracy on rows ``X`` (or on its rows ``batch`` names), (K,)."""
        xp, params = self.xp, self.state["params"]
        values = []
        for k, size in enumerate(self.sizes):
            rows, labels = X, y
            if batch is not None:
                rows, labels = xp.take(X, batch[k, :], axis=0), xp.take(y, batch[k, :], axis=0)
            _, scores = forward(xp, _member(xp, params, k, size, copy=False), rows)
            values.append(accuracy(xp, labels, xp.argmax(scores, axis=1)))
        return xp.stack(values)

    def _ask(self, on_epoch: GroupEpochCallback, indices: list[int], members: list[_Member],
             val: list[Array], done: int, per_epoch: int) -> list[int]:  # fmt: skip
        """``on_epoch`` at an epoch's end, told of the members still training (those whose
        last iteration ends it included, as a run alone calls it at its last epoch's end)
        among all ``fit_many``'s networks; the members it names, by their indices here."""
        last = to_numpy(val[-1]).tolist() if val else [None] * len(members)
        told: list[float | None] = [None] * self.count
        for index, value, member in zip(indices, last, members, strict=True):
            told[index] = value if member.stopped_at is None else None
        stop = on_epoch(done // per_epoch, told) or ()
        return [
            indices.index(index)
            for index in stop
            if index in indices and members[indices.index(index)].stopped_at is None
        ]

    def _results(
        self, indices: list[int], members: list[_Member], losses: list[Array],
        accs: dict[str, list[Array]], done: int,
    ) -> list[TrainResult]:  # fmt: skip
        xp = self.xp
        all_losses = to_numpy(xp.concat(losses)).astype(float)  # (iterations, K)
        train = to_numpy(xp.stack(accs["train"])).astype(float) if accs["train"] else None
        val = to_numpy(xp.stack(accs["val"])).astype(float) if accs["val"] else None
        results = []
        for k, (member, s) in enumerate(zip(members, self.settings, strict=True)):
            iterations = done if member.stopped_at is None else member.stopped_at
            epochs = len(accs["train"]) if member.epochs is None else member.epochs
            history: History = {
                "loss_history": all_losses[:iterations, k].tolist(),
                "train_acc_history": [] if train is None else train[:epochs, k].tolist(),
                "val_acc_history": [] if val is None else val[:epochs, k].tolist(),
            }
            params = member.kept if member.kept is not None \
                else _member(xp, self.state["params"], k, self.sizes[k])  # fmt: skip
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
                "diverged_at": member.diverged_at,
                "divergence": member.divergence,
                "stopped_epoch": member.stopped_epoch,
            }  # fmt: skip
            results.append(TrainResult(params, history, record))
        return results


def _stacked(xp: Namespace, params: list[Params], hidden: int) -> Params:
    """K networks' parameters as one stack, each hidden layer padded with zeros to ``hidden``
    units: ``W1`` (K, D, hidden), ``b1`` (K, hidden), ``W2`` (K, hidden, C), ``b2`` (K, C)."""

    def padded(p: Array, axis: int) -> Array:
        missing = hidden - p.shape[axis]
        if not missing:
            return p
        shape = list(p.shape)
        shape[axis] = missing
        return xp.concat([p, xp.zeros(tuple(shape), dtype=p.dtype, device=device_of(p))], axis=axis)

    return {
        "W1": xp.stack([padded(p["W1"], 1) for p in params]),
        "b1": xp.stack([padded(p["b1"], 0) for p in params]),
        "W2": xp.stack([padded(p["W2"], 0) for p in params]),
        "b2": xp.stack([p["b2"] for p in params]),
    }


def _member(xp: Namespace, params: Params, k: int, hidden: int, copy: bool = True) -> Params:
    """Member ``k``'s parameters from a stack, at its own ``hidden`` size (a copy, or views)."""
    own: Params = {
        "W1": params["W1"][k, :, :hidden],
        "b1": params["b1"][k, :hidden],
        "W2": params["W2"][k, :hidden, :],
        "b2": params["b2"][k, :],
    }
    return copied(xp, own) if copy else own


def _cut(pieces: Iterable[slice], ends: list[int], max_chunk: int) -> list[tuple[slice, bool]]:
    """The chunks ``pieces`` (fit's slices of an epoch), cut again at each of ``ends`` and
    into runs of at most ``max_chunk`` steps (the group's runner's); each with whether it
    ends where one of ``pieces`` does (where fit would check)."""
    cut = []
    for piece in pieces:
        stops = sorted({end for end in ends if piece.start < end < piece.stop} | {piece.stop})
        start = piece.start
        for stop in stops:
            while start < stop:
                end = min(start + max_chunk, stop)
                cut.append((slice(start, end), end == piece.stop))
                start = end
    return cut


def _lab_rows_needed(settings: list[TrainSettings], num_rows: int) -> int:
    """The batches of lab rows the group's longest run has: whole epochs of them."""
    per_epoch = iterations_per_epoch(num_rows, settings[0].batch_size)
    return -(-max(s.num_iters for s in settings) // per_epoch) * per_epoch


def _padded_rows(rows: np.ndarray, needed: int) -> np.ndarray:
    """A shorter run's lab rows, padded with row 0 to the group's: batches after its end,
    which it does not train on."""
    missing = needed - rows.shape[0]
    return rows if missing <= 0 else np.concatenate([rows, np.zeros((missing, rows.shape[1]),
                                                                    dtype=rows.dtype)])  # fmt: skip
