"""K networks' arrays as one stack: stacked, a member taken out, the stack cut to fewer.

A group (:class:`~xpnet.training._group.Group`) keeps its members' parameters and
optimiser state as stacks on a first axis, each hidden layer padded with zeros to the
largest member's; when members stop, the stack is cut to those still training
(:func:`restacked`), and the losses the stack recorded so far are kept by member
(:class:`LossLog`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from xpnet._typing import Array, Device, Namespace, Params
from xpnet.backend import device_of, to_numpy
from xpnet.training._record import copied, iterations_per_epoch
from xpnet.training._settings import TrainSettings

__all__ = ["LossLog", "cut", "lab_rows_needed", "member", "padded_rows", "restacked", "stacked"]


def stacked(xp: Namespace, params: list[Params], hidden: int) -> Params:
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


def member(xp: Namespace, params: Params, k: int, hidden: int, copy: bool = True) -> Params:
    """Member ``k``'s parameters from a stack, at its own ``hidden`` size (a copy, or views)."""
    own: Params = {
        "W1": params["W1"][k, :, :hidden],
        "b1": params["b1"][k, :hidden],
        "W2": params["W2"][k, :hidden, :],
        "b2": params["b2"][k, :],
    }
    return copied(xp, own) if copy else own


def restacked(xp: Namespace, arrays: Mapping[str, Array], index: Array, hidden: int) -> Params:
    """The stack ``arrays`` (parameters, or an optimiser's arrays of their shapes) cut to the
    members at positions ``index`` (an integer array) and to ``hidden`` units: the units
    beyond every kept member's size hold zeros, which add nothing to the scores."""
    # cut, then taken: new arrays, which keep nothing of the old stack alive
    return {
        "W1": xp.take(arrays["W1"][:, :, :hidden], index, axis=0),
        "b1": xp.take(arrays["b1"][:, :hidden], index, axis=0),
        "W2": xp.take(arrays["W2"][:, :hidden, :], index, axis=0),
        "b2": xp.take(arrays["b2"], index, axis=0),
    }


@dataclass
class _Segment:
    """The losses of the iterations from ``first`` on, while the stack held ``ids``."""

    ids: tuple[int, ...]
    first: int
    chunks: list[Array] = field(default_factory=list)  # (steps, K) each, on the device
    host: np.ndarray | None = None  # all of them, once the stack has changed


class LossLog:
    """Every member's loss at every iteration, as the stack recorded them: on the device
    while the stack holds the same members, on the host once it changed."""

    def __init__(self, xp: Namespace, ids: Sequence[int], device: Device) -> None:
        self.xp, self.device = xp, device
        self.segments = [_Segment(tuple(ids), 0)]

    def append(self, losses: Array) -> None:
        """A chunk's losses, (steps, K) for the stack's members."""
        self.segments[-1].chunks.append(losses)

    def restack(self, ids: Sequence[int], first: int) -> None:
        """From iteration ``first`` on, the stack holds ``ids``."""
        last = self.segments[-1]
        last.host = to_numpy(self._joined(last)).astype(float)
        self.segments.append(_Segment(tuple(ids), first))

    def recent(self, start: int, stop: int) -> Array:
        """The current stack's losses of the iterations ``start`` to ``stop`` (those before it
        held its members left out), (steps, K), on the device."""
        last = self.segments[-1]
        return self._joined(last)[max(start - last.first, 0) : max(stop - last.first, 0), ...]

    def earlier(self, start: int, stop: int) -> list[tuple[tuple[int, ...], np.ndarray]]:
        """The losses of the iterations ``start`` to ``stop`` that earlier stacks recorded: for
        each, its members and their losses (steps, K), on the host."""
        found = []
        for segment, after in zip(self.segments, self.segments[1:], strict=False):
            assert segment.host is not None
            begin, end = max(start, segment.first), min(stop, after.first)
            if begin < end:
                found.append(
                    (segment.ids, segment.host[begin - segment.first : end - segment.first])
                )
        return found

    def of(self, k: int, start: int, stop: int) -> np.ndarray:
        """Member ``k``'s losses of the iterations ``start`` to ``stop``, on the host."""
        parts = [rows[:, ids.index(k)] for ids, rows in self.earlier(start, stop)]
        last = self.segments[-1]
        if k in last.ids and stop > last.first:
            recent = to_numpy(self.recent(start, stop)).astype(float)
            parts.append(recent[:, last.ids.index(k)])
        return np.concatenate(parts) if parts else np.zeros(0)

    def _joined(self, segment: _Segment) -> Array:
        """A segment's chunks as one array, joined once."""
        if len(segment.chunks) != 1:
            segment.chunks[:] = [self.xp.concat(segment.chunks)] if segment.chunks else []
        if not segment.chunks:
            return self.xp.zeros((0, len(segment.ids)), device=self.device)
        return segment.chunks[0]


def cut(pieces: Iterable[slice], ends: list[int], max_chunk: int) -> list[tuple[slice, bool]]:
    """The chunks ``pieces`` (fit's slices of an epoch), cut again at each of ``ends`` and
    into runs of at most ``max_chunk`` steps (the group's runner's); each with whether it
    ends where one of ``pieces`` does (where fit would check)."""
    found = []
    for piece in pieces:
        stops = sorted({end for end in ends if piece.start < end < piece.stop} | {piece.stop})
        start = piece.start
        for stop in stops:
            while start < stop:
                end = min(start + max_chunk, stop)
                found.append((slice(start, end), end == piece.stop))
                start = end
    return found


def lab_rows_needed(settings: list[TrainSettings], num_rows: int) -> int:
    """The batches of lab rows the group's longest run has: whole epochs of them."""
    per_epoch = iterations_per_epoch(num_rows, settings[0].batch_size)
    return -(-max(s.num_iters for s in settings) // per_epoch) * per_epoch


def padded_rows(rows: np.ndarray, needed: int) -> np.ndarray:
    """A shorter run's lab rows, padded with row 0 to the group's: batches after its end,
    which it does not train on."""
    missing = needed - rows.shape[0]
    return rows if missing <= 0 else np.concatenate([rows, np.zeros((missing, rows.shape[1]),
                                                                    dtype=rows.dtype)])  # fmt: skip
