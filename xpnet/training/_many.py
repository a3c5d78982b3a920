"""Many networks trained together: one array program for K runs (:func:`fit_many`).

A network of the lab's size is too small to keep a machine busy: each step's fixed
cost (Python calls, kernel launches) is as large as its arithmetic. K networks
trained together share those costs: their parameters are stacked on a first axis
(``W1`` (K, D, H), ...), the step is the one :class:`~xpnet.training.TrainStep` (its
matrix products broadcast over the stack), and the runners are those of one run.

Each network is its own run: its seed, streams, batches, dropout masks and
distortions are drawn as it would draw them alone (from its own generator, counted
by the step), its hyperparameters are its own ((K,) arrays in the run's data), and a
smaller hidden size is computed at the largest with the units it lacks held at zero
(they add nothing to the scores and get no gradient). What changes is only the
order in which the machine sums: a network's parameters match its run alone to
rounding (tested in float64 after 300 steps, 1e-10 relative).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xpnet import _checks
from xpnet._typing import ArrayLike, Params
from xpnet.backend import to_numpy
from xpnet.training._group import Group, GroupEpochCallback
from xpnet.training._loop import checked_data
from xpnet.training._randomness import lab_rows, run_seed
from xpnet.training._record import TrainResult
from xpnet.training._settings import TrainSettings

__all__ = ["fit_many", "group_key"]


def group_key(settings: TrainSettings) -> tuple[object, ...]:
    """What networks trained together must share: one program's shapes and terms.

    The compute settings (backend, device, dtype), the batch size, the optimiser,
    whether the batches are shuffled, the distortions, how the steps run and on how
    many threads, whether SGD keeps a velocity, and D and C. Every other
    hyperparameter (the learning rate and its schedule, ``reg``, ``weight_decay``,
    ``momentum``'s value, ``dropout``, the hidden size, ``std``, the iterations) and
    the seed may differ from network to network.
    """
    s = settings
    return (s.compute, s.batch_size, s.optimizer, s.shuffle, s.augment, s.compile, s.threads,
            s.momentum > 0, s.input_size, s.output_size)  # fmt: skip


def fit_many(
    params: Sequence[Params],
    settings: Sequence[TrainSettings],
    X: ArrayLike,
    y: ArrayLike,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
    *,
    rngs: Sequence[np.random.Generator | None],
    blank: ArrayLike | None = None,
    on_epoch: GroupEpochCallback | None = None,
) -> list[TrainResult]:
    """Train several networks on the same data, those that can share a program together.

    As :func:`~xpnet.training.fit` for each ``(params[k], settings[k], rngs[k])``, but
    networks whose settings share a :func:`group_key` train together, in one array
    program (groups one after another, each a network's first appearance in order).

    Parameters
    ----------
    params : sequence of dict
        Each network's ``W1`` (D, H_k), ``b1`` (H_k,), ``W2`` (H_k, C), ``b2`` (C,).
    settings : sequence of TrainSettings
        Each network's; early stopping and ``restore_best`` are refused (a group's
        members would need an early stop each: stop them through ``on_epoch``).
    X, y, X_val, y_val, blank
        As for :func:`~xpnet.training.fit`: the data every network trains on.
    rngs : sequence of numpy.random.Generator or None
        Each network's source of its run's seed, as for ``fit``; a network whose
        generator is None draws its lab batches and seed from NumPy's global state, in
        the order of ``settings``, as runs one after another would.
    on_epoch : callable, optional
        ``on_epoch(epoch, val_accs)`` after each epoch of a group, ``val_accs`` a list
        with each network's validation accuracy, in the order of ``settings`` (None for
        a network of another group, one that has stopped, or without validation data);
        it returns the indices of networks to stop there (None: none). A stopped
        network's result is its state at that epoch's end, with ``stopped_epoch`` in its
        record.

    Returns
    -------
    list of TrainResult
        One per network, in the order of ``settings``: its parameters, history and
        record (``together``: how many trained in its group; ``diverged_at``: the
        iteration at which its loss stopped being finite, its parameters then those of
        the last check before, and its history ending there; None if it did not;
        ``divergence``: what :func:`fit`'s :class:`~xpnet.errors.TrainingDivergedError`
        would have said, or None).

    Raises
    ------
    TypeError, ValueError
        For sequences of different lengths or none, or bad data, or early stopping.

    Notes
    -----
    A network that stops (at its own ``num_iters``, diverged, or stopped by ``on_epoch``)
    is computed on with its group, its numbers ignored, until a quarter of the group has
    stopped; the others then go on in a stack of their own, cut to the largest hidden size
    among them (on JAX, one more compilation), so a stopped network costs little more.

    A group runs on its settings' runner, but on torch's CUDA, whose CUDA graphs of a
    stacked step failed to capture on an H200 at K = 64: there a group of more than one
    runs eagerly unless ``compile=True`` (its divergence checks still fall where each
    member's alone would).
    """
    params, settings, rngs = list(params), list(settings), list(rngs)
    if not settings or not len(params) == len(settings) == len(rngs):
        raise ValueError(
            f"fit_many takes as many params, settings and rngs, at least one: got "
            f"{len(params)}, {len(settings)} and {len(rngs)}"
        )
    _checks.optional_callable("on_epoch", on_epoch)
    for k, (s, rng) in enumerate(zip(settings, rngs, strict=True)):
        if not isinstance(s, TrainSettings):
            raise TypeError(f"settings[{k}] must be a TrainSettings, got {s!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rngs[{k}] must be a numpy.random.Generator or None, got {rng!r}")
        if s.early_stopping or s.restore_best:
            raise ValueError(
                f"settings[{k}] asks for early stopping or restore_best, which fit_many does "
                "not do for a member; stop members through on_epoch, or train it with fit"
            )
        sizes = (*params[k]["W1"].shape, params[k]["W2"].shape[1])
        if sizes != s.sizes:
            raise ValueError(f"params[{k}] are those of a {'-'.join(map(str, sizes))} "
                             f"network; settings[{k}] describe a {'-'.join(map(str, s.sizes))} "
                             "one")  # fmt: skip
    groups: dict[tuple[object, ...], list[int]] = {}
    for k, s in enumerate(settings):
        groups.setdefault(group_key(s), []).append(k)
    checked = {}  # every group's data and memory, before any generator draws
    for key, members in groups.items():
        check_group_memory([settings[k] for k in members])
        checked[key] = checked_data(settings[members[0]], X, y, X_val, y_val)
    for k, (s, rng) in enumerate(zip(settings, rngs, strict=True)):
        s.check_generator(rng, f"rngs[{k}]")
    # The lab's batches and the seeds from NumPy's global state, in the members' order.
    seeds = {k: _seed_and_rows(settings[k], X, rngs[k]) for k in range(len(settings))}
    results: dict[int, TrainResult] = {}
    for key, members in groups.items():
        group = Group([params[k] for k in members], [settings[k] for k in members],
                      [seeds[k] for k in members], checked[key], blank)  # fmt: skip
        for k, result in zip(members, group.run(members, len(settings), on_epoch), strict=True):
            results[k] = result
    return [results[k] for k in range(len(settings))]


def check_group_memory(settings: Sequence[TrainSettings]) -> None:
    """Refuse a group whose arrays cannot fit in the device's memory: K networks'
    parameters with their gradients, the last check's copy, the optimiser's state (Adam's
    two moments, momentum's velocity) and two temporaries of each, and a step's batches,
    activations and gradients.

    Raises
    ------
    ValueError
        If they cannot fit, naming the group and that fewer networks together need less.
    """
    first = settings[0]
    H, (D, C), K, B = max(s.hidden_size for s in settings), \
        (first.input_size, first.output_size), len(settings), first.batch_size  # fmt: skip
    state = 2 if first.optimizer in ("adam", "adamw") else int(any(s.momentum for s in settings))
    copies = 5 + state
    backend = first.compute.resolved
    _checks.fits_in_memory(backend, K * (copies * (D + C + 1) * H + B * (D + 2 * C + 3 * H)),
                           backend.dtype(first.compute.dtype),
                           f"{K} networks of hidden_size={H} trained together, batch_size={B} "
                           "(fewer trained together need less)")  # fmt: skip


def _seed_and_rows(
    settings: TrainSettings, X: ArrayLike, rng: np.random.Generator | None
) -> tuple[int, np.ndarray | None]:
    """A member's seed, and its lab batches (drawn first, as a run alone draws them)."""
    if rng is not None:
        return run_seed(rng), None
    s, backend = settings, settings.compute.resolved
    rows = lab_rows(backend, int(np.shape(X)[0]), s.batch_size, s.shuffle, s.num_iters)
    return run_seed(None), to_numpy(rows)
