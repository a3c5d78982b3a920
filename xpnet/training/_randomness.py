"""Every random number of a training run: its seed, its streams, and what each step draws.

A run draws one number on the host, its seed (:func:`run_seed`): from the network's
NumPy generator, so that ``seed=`` decides it and each ``train`` call gets new
batches, or from NumPy's global state for a network without a seed, as the lab's
``np.random.seed`` does. Every other number is drawn on the device by
:mod:`xpnet.random`, on one of the run's :data:`STREAMS` (keys made from the seed by
:func:`stream_keys`) and counted by the step: batch rows (:class:`BatchSampler`), and
a step's distortions and dropout masks (:func:`draw_noise`). A compiled step draws
its own; the eager loop draws several steps' at once (:class:`DrawnAhead`). So the
numbers are the same on every backend and device, however the steps are chunked.

A network without a seed follows the lab instead for its batch rows: they are NumPy's
``np.random.choice`` draws (:func:`lab_rows`), made before the first step and moved to
the device once, so that the handout's numbers come out exactly. Nothing random is
drawn on the host once the steps have begun.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xpnet import random as xr
from xpnet._typing import Array, Device, Namespace
from xpnet.augment import Augmentation
from xpnet.backend import Backend, device_of
from xpnet.training._record import iterations_per_epoch

__all__ = [
    "DRAW_AHEAD_ELEMENTS",
    "DRAW_AHEAD_STEPS",
    "STREAMS",
    "BatchSampler",
    "DrawnAhead",
    "Members",
    "distortion_noise",
    "draw_noise",
    "lab_rows",
    "noise_names",
    "run_seed",
    "stream_keys",
]

#: The random streams of a training run, by name: stream ``i`` has the key
#: ``xpnet.random.stream_key(seed, i)``, and a step's draws are counted by the step.
STREAMS = ("batch", "dropout", "affine", "elastic")
#: The eager loop draws the random numbers of up to this many steps in one call...
DRAW_AHEAD_STEPS = 16
#: ...and of at most this many elements a draw (dropout masks are B x H a step).
DRAW_AHEAD_ELEMENTS = 2**21


def run_seed(rng: np.random.Generator | None) -> int:
    """A run's seed: one draw from ``rng``, or from NumPy's global state when None."""
    if rng is not None:
        return int(rng.integers(2**63))
    return int(np.random.randint(2**63, dtype=np.int64))  # noqa: NPY002 - the lab's state


def stream_keys(xp: Namespace, seed: int, device: Device) -> dict[str, Array]:
    """The keys of a run's random streams (:data:`STREAMS`), made on ``device``.

    Returns
    -------
    dict
        ``key_batch``, ``key_dropout``, ``key_affine``, ``key_elastic``: arrays of
        shape (2,), int32, as a training step reads them from its ``data``.
    """
    return {
        f"key_{name}": xr.stream_key(seed, stream, xp=xp, device=device)
        for stream, name in enumerate(STREAMS)
    }


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
        Every epoch's rows, drawn before the run (``lab_rows``): then
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
    backend: Backend, num_rows: int, batch_size: int, shuffle: bool, num_iters: int
) -> Array:
    """Every epoch's batch rows of a run, drawn as the lab draws them, from NumPy's
    global state (``np.random.choice`` a batch, with replacement; a permutation an
    epoch with ``shuffle``), before the first step, and moved to the device once.

    A network without a seed follows ``np.random.seed``, as the lab's does; these
    are then its batches, so that the handout's toy numbers come out exactly.

    Returns
    -------
    array, shape (E * per_epoch, B), on the backend's device
        ``E`` the epochs the run begins.
    """
    per_epoch = iterations_per_epoch(num_rows, batch_size)
    epochs = -(-num_iters // per_epoch)
    lab = np.random  # the global state, the lab's source: not a Generator, on purpose
    if shuffle:
        size = min(batch_size, num_rows)
        rows = [lab.permutation(num_rows)[: per_epoch * size] for _ in range(epochs)]
        drawn = np.concatenate(rows).reshape(epochs * per_epoch, size)
    else:
        drawn = np.concatenate(
            [lab.choice(num_rows, (per_epoch, batch_size)) for _ in range(epochs)]
        )
    return backend.asarray(drawn)


def distortion_noise(
    augment: Augmentation, xp: Namespace, keys: tuple[Array, Array], step: Array | int,
    batch: int, device: Device,
) -> dict[str, Array]:  # fmt: skip
    """The noise of ``augment``'s distortions for one step, or several, of ``batch`` images.

    Parameters
    ----------
    augment : Augmentation
    xp : module
        The Array API namespace.
    keys : (array, array)
        The keys (:func:`xpnet.random.stream_key`) of the affine and the elastic stream.
    step : int or integer array, shape S
        The training step(s): the counter of the draw. Row ``k`` of a draw of several
        steps is the draw of step ``step[k]`` alone.
    batch : int
        The number of images.
    device : object

    Returns
    -------
    dict
        What :meth:`Augmentation.apply <xpnet.augment.Augmentation.apply>` takes, arrays
        of shape S + (...): ``affine`` (batch, 5), uniform in [-1, 1) for rotation, scale,
        shear and the two shifts; for elastic distortions, ``field`` (batch, 2, r, r'):
        uniform in [-1, 1), ``(r, r')`` the :attr:`~xpnet.augment.Augmentation.field_shape`.
        Float32 on every backend, so that float32 and float64 networks see the same.
    """
    on = {"xp": xp, "device": device, "dtype": xp.float32}
    noise = {"affine": xr.uniform(keys[0], step, (batch, 5), **on) * 2 - 1}
    if augment.elastic:
        noise["field"] = xr.uniform(keys[1], step, (batch, 2, *augment.field_shape), **on) * 2 - 1
    return noise


@dataclass(frozen=True)
class Members:
    """What K networks trained together (:func:`~xpnet.training.fit_many`) draw apart:
    each its own dropout masks, of its own hidden size and rate. (Each has its own
    streams too: the keys in a stack's ``data`` are (K, 2), one per network.)"""

    hidden_sizes: tuple[int, ...]
    dropouts: tuple[float, ...]


def noise_names(dropout: float, augment: Augmentation | None) -> tuple[str, ...]:
    """The names of the arrays :func:`draw_noise` makes: ``affine`` and ``field`` (the
    distortions'), ``keep`` (dropout's); none for a step without randomness."""
    names: tuple[str, ...] = ()
    if augment is not None:
        names += ("affine", "field") if augment.elastic else ("affine",)
    return (*names, "keep") if dropout else names


def draw_noise(
    xp: Namespace, data: dict[str, Array], step: Array, batch_size: int, hidden_size: int,
    *, dropout: float, augment: Augmentation | None, members: Members | None = None,
) -> dict[str, Array]:  # fmt: skip
    """The random numbers of one training step, or of several at once.

    Parameters
    ----------
    xp : module
        The Array API namespace.
    data : dict
        The run's data: ``X``, on the run's device, and its stream keys (:func:`stream_keys`).
    step : int32 array, shape S
        The steps' numbers: ``()`` for one step, ``(K,)`` for ``K``.
    batch_size, hidden_size : int
        B and H.
    dropout : float
        The rate of inverted dropout; 0 for none.
    augment : Augmentation or None
        The distortions.

    Returns
    -------
    dict
        :func:`noise_names` to arrays of shape S + (...): ``affine`` (B, 5) and
        ``field`` (B, 2, r, r'), float32; ``keep`` (B, H), bool, true with
        probability ``1 - dropout``. Row ``k`` of a draw of ``(K,)`` steps is
        the draw of step ``step[k]`` alone, bit for bit. With ``members``, each
        network's draws from its own keys, stacked after the steps' axes: shape
        S + (K, ...), each mask that of the network alone, padded with False to
        ``hidden_size``.
    """
    if members is not None:
        return _members_noise(xp, data, step, batch_size, hidden_size, members, augment)
    device = device_of(data["X"])
    draws: dict[str, Array] = {}
    if augment is not None:
        keys = (data["key_affine"], data["key_elastic"])
        draws.update(distortion_noise(augment, xp, keys, step, batch_size, device))
    if dropout:
        draws["keep"] = xr.bernoulli(data["key_dropout"], step, (batch_size, hidden_size),
                                     1 - dropout, xp=xp, device=device)  # fmt: skip
    return draws


def _members_noise(
    xp: Namespace, data: dict[str, Array], step: Array, batch_size: int, hidden_size: int,
    members: Members, augment: Augmentation | None,
) -> dict[str, Array]:  # fmt: skip
    """:func:`draw_noise` of K networks, each from its own keys, stacked."""
    drawn: dict[str, list[Array]] = {}
    dropout = max(members.dropouts)
    for k, (size, rate) in enumerate(zip(members.hidden_sizes, members.dropouts, strict=True)):
        own = {"X": data["X"], **{name: data[name][k, :] for name in data if name[:4] == "key_"}}
        draws = draw_noise(xp, own, step, batch_size, size, dropout=rate, augment=augment)
        if dropout:
            keep = draws.get("keep")
            if keep is None:  # a network without dropout in a group with it: all kept
                keep = xp.ones((*step.shape, batch_size, size), dtype=xp.bool,
                               device=device_of(data["X"]))  # fmt: skip
            if size < hidden_size:  # the units it lacks are dropped: they are zeros anyway
                padding = xp.zeros((*keep.shape[:-1], hidden_size - size), dtype=xp.bool,
                                   device=device_of(keep))  # fmt: skip
                keep = xp.concat([keep, padding], axis=-1)
            draws["keep"] = keep
        for name, values in draws.items():
            drawn.setdefault(name, []).append(values)
    return {name: xp.stack(values, axis=step.ndim) for name, values in drawn.items()}


class DrawnAhead:
    """The random numbers of the eager loop's coming steps, drawn several steps at a time.

    One call of :mod:`xpnet.random` costs a fixed few hundred microseconds on NumPy
    (some 170 whole-array operations) however few numbers it makes: as much as a
    small network's whole step. Drawing ``K`` steps in one call pays it once; the
    numbers are those each step would draw alone (the generator is counted by the
    step), so nothing else changes: the loop still runs, reports and stops step by
    step.
    """

    def __init__(
        self, xp: Namespace, data: dict[str, Array], hidden_size: int, *, dropout: float,
        augment: Augmentation | None, members: Members | None = None,
    ) -> None:  # fmt: skip
        self.xp, self.data, self.hidden_size = xp, data, hidden_size
        self.dropout, self.augment, self.members = dropout, augment, members
        self.block: dict[str, Array] = {}
        self.start = self.stop = 0  # the block's steps, as slice bounds within its epoch
        self.epoch_steps: Array | None = None

    def take(self, batches: Array, steps: Array, chunk: slice) -> dict[str, Array]:
        """The draws of the steps ``steps[chunk]`` of the epoch whose batches are
        ``batches`` (per_epoch, B), drawing the next block when they are not held."""
        if not noise_names(self.dropout, self.augment):
            return {}
        held = steps is self.epoch_steps and self.start <= chunk.start and chunk.stop <= self.stop
        if not held:
            batch_size = batches.shape[-1]
            # a dropout mask, the largest draw (K of them for K networks)
            per_step = batch_size * self.hidden_size * (len(self.members.dropouts)
                                                        if self.members else 1)  # fmt: skip
            size = max(1, min(DRAW_AHEAD_STEPS, DRAW_AHEAD_ELEMENTS // per_step))
            self.start = chunk.start
            self.stop = min(max(chunk.stop, chunk.start + size), steps.shape[0])
            self.epoch_steps = steps
            self.block = draw_noise(
                self.xp, self.data, steps[self.start : self.stop], batch_size, self.hidden_size,
                dropout=self.dropout, augment=self.augment, members=self.members,
            )  # fmt: skip
        part = slice(chunk.start - self.start, chunk.stop - self.start)
        return {name: values[part, ...] for name, values in self.block.items()}
