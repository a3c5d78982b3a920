"""Threefry-2x32, the generator's core: keys, counters and 32-bit words.

Keys and counters
-----------------
:func:`stream_key` derives the key of one *stream* (say, the dropout masks or the
batch rows of a training run) from the run's seed, the way ``jax.random.fold_in``
does: ``threefry2x32((seed >> 32, seed mod 2**32), (0, stream))``. Within a stream,
block ``i`` of step ``s`` is ``threefry2x32(key, (s, i))``: the first counter word
is the step, the second the element. A ``step`` argument may be an integer array of
any shape ``S``; the draw then has shape ``S + shape`` and row ``k`` of it is the
draw of step ``step[k]``, so that a chunk of ``K`` steps drawn at once equals ``K``
steps drawn one at a time, by construction. Different draws on the same stream and
step share counters: give each kind of randomness its own stream.

Words
-----
The 32-bit words travel in ``int32`` arrays holding the same bits (two's complement:
the word ``0xFFFFFFFF`` is the ``int32`` value -1). PyTorch 2.13 has no ``+``,
``<<``, ``>>`` or ``<`` for ``uint32`` tensors, and JAX has no 64-bit integers
unless its 64-bit mode is on, so ``int32`` is the one dtype on which every backend
does all the operations. Additions and left shifts wrap modulo 2**32, as all the
supported libraries do for ``int32``; right shifts are arithmetic (the standard
says so), and a mask after each one makes it logical. The known-answer tests check
the words on every backend. After the first round the words are updated with
augmented assignments: in place on libraries with mutable arrays (a third of the
time on NumPy), a new array on JAX.
"""

from __future__ import annotations

import math
import numbers

from xpnet._typing import Array, ArrayDType, Device, Namespace

__all__ = [
    "bits",
    "blocks",
    "check_int",
    "const",
    "element_count",
    "flat_blocks",
    "flat_words",
    "stream_key",
    "threefry2x32",
]

#: Rotation distances of Threefry-2x32 (Random123's ``R_32x2``), one per round, cycling.
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
#: The key schedule's parity constant (Skein's ``SKEIN_KS_PARITY32``).
_PARITY = 0x1BD11BDA
_ROUNDS = 20
_WORD = 2**32
#: The most elements of one draw: the element counter is an ``int32`` ``arange``.
_MAX_ELEMENTS = 2**31 - 1


def _signed(word: int) -> int:
    """The ``int32`` value whose bits are the 32-bit word ``word``."""
    return word - _WORD if word >= 2**31 else word


def const(xp: Namespace, value: int | float, dtype: ArrayDType, device: Device) -> Array:
    """A one-element array made on ``device`` (``full`` fills on the device: no host copy)."""
    return xp.full((1,), value, dtype=dtype, device=device)


def threefry2x32(
    key: Array, count0: Array, count1: Array, *, xp: Namespace, device: Device
) -> tuple[Array, Array]:
    """Threefry-2x32 with 20 rounds: the two words of ``key`` encrypt the counters.

    Parameters
    ----------
    key : array, shape (2,), int32
        The key words ``(k0, k1)`` (bits of the 32-bit words, see the module notes).
    count0, count1 : array, int32, broadcastable against each other
        The two counter words of each block; at least one dimension.
    xp : module
        The Array API namespace of the arrays.
    device : object
        Their device; the round constants are made there.

    Returns
    -------
    (array, array), int32, the broadcast shape of the counters
        The two output words of each block.
    """
    k0, k1 = key[0:1], key[1:2]
    schedule = (k0, k1, k0 ^ k1 ^ const(xp, _PARITY, xp.int32, device))
    rotations = [
        (
            const(xp, r, xp.int32, device),
            const(xp, 32 - r, xp.int32, device),
            const(xp, (1 << r) - 1, xp.int32, device),
        )
        for r in _ROTATIONS
    ]
    x0, x1 = count0 + k0, count1 + k1
    for round_ in range(_ROUNDS):
        left, right, low_bits = rotations[round_ % len(_ROTATIONS)]
        # rotate left by r: x << r | x >> (32 - r), the >> made logical by a mask
        if round_ == 0:  # new arrays of the broadcast shape of the counters
            x0 = x0 + x1
            x1 = ((x1 << left) | ((x1 >> right) & low_bits)) ^ x0
        else:  # then in place where arrays are mutable (one temporary a round); JAX rebinds
            x0 += x1
            high_bits = x1 << left
            x1 >>= right
            x1 &= low_bits
            x1 |= high_bits
            x1 ^= x0
        if round_ % 4 == 3:  # key injection number s = 1, ..., 5
            s = round_ // 4 + 1
            x0 += schedule[s % 3]
            x1 += schedule[(s + 1) % 3]
            x1 += const(xp, s, xp.int32, device)
    return x0, x1


def stream_key(seed: int, stream: int, *, xp: Namespace, device: Device) -> Array:
    """The key of stream ``stream`` of a run seeded with ``seed``.

    It is ``jax.random.fold_in(jax.random.PRNGKey(seed), stream)``'s key data:
    ``threefry2x32((seed >> 32, seed mod 2**32), (0, stream))``.

    Parameters
    ----------
    seed : int
        The run's seed, ``0 <= seed < 2**64``.
    stream : int
        Which stream, ``0 <= stream < 2**32``.
    xp : module
        The Array API namespace to make the key in.
    device : object
        The device to make it on.

    Returns
    -------
    array, shape (2,), int32
        The key words.
    """
    check_int("seed", seed, 2**64)
    check_int("stream", stream, _WORD)
    seed_key = xp.concat(
        [
            const(xp, _signed(seed >> 32), xp.int32, device),
            const(xp, _signed(seed % _WORD), xp.int32, device),
        ]
    )
    y0, y1 = threefry2x32(
        seed_key,
        const(xp, 0, xp.int32, device),
        const(xp, _signed(stream), xp.int32, device),
        xp=xp,
        device=device,
    )
    return xp.concat([y0, y1])


def blocks(
    key: Array, step: int | Array, shape: tuple[int, ...], *, xp: Namespace, device: Device
) -> tuple[Array, Array]:
    """The blocks of one draw: element ``i`` (in C order) is ``threefry2x32(key, (step, i))``.

    Parameters
    ----------
    key : array, shape (2,), int32
        A stream's key (:func:`stream_key`).
    step : int or integer array, shape S
        The step counter(s), each ``0 <= step < 2**32``. An array is converted to
        ``int32``; steps of 2**31 and more come as ``int32`` holding the word's bits.
    shape : tuple of int
        The shape of one step's draw.
    xp : module
        The Array API namespace.
    device : object
        The device of ``key``.

    Returns
    -------
    (array, array), int32, shape S + shape
        The two words of each element's block.
    """
    y0, y1 = flat_blocks(key, step, element_count(shape), xp=xp, device=device)
    leading = y0.shape[:-1]
    return xp.reshape(y0, (*leading, *shape)), xp.reshape(y1, (*leading, *shape))


def bits(
    key: Array, step: int | Array, shape: tuple[int, ...], *, xp: Namespace, device: Device
) -> Array:
    """The 32-bit words of one draw: word ``2j`` and ``2j + 1`` (C order) are block ``j``'s.

    Parameters are those of :func:`blocks`.

    Returns
    -------
    array, int32, shape S + shape
        The words (bits of unsigned 32-bit words).
    """
    words = flat_words(key, step, element_count(shape), xp=xp, device=device)
    return xp.reshape(words, (*words.shape[:-1], *shape))


def check_int(name: str, value: object, high: int, low: int = 0) -> int:
    """``value`` as an int; TypeError unless it is an integer, ValueError unless in [low, high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    number = int(value)
    if not low <= number < high:
        raise ValueError(f"{name} must satisfy {low} <= {name} < {high}; got {number}")
    return number


def element_count(shape: object) -> int:
    """The number of elements of ``shape``, checked."""
    if not isinstance(shape, tuple) or not all(
        not isinstance(d, bool) and isinstance(d, numbers.Integral) and int(d) >= 0 for d in shape
    ):
        raise ValueError(f"shape must be a tuple of non-negative ints; got {shape!r}")
    count = math.prod(int(d) for d in shape)
    if count > _MAX_ELEMENTS:
        raise ValueError(
            f"one draw can have at most {_MAX_ELEMENTS} elements; shape {shape} has {count}: "
            "draw in parts on different streams"
        )
    return count


def _steps(step: int | Array, *, xp: Namespace, device: Device) -> Array:
    """``step`` as an int32 array of shape S + (1,), ready to broadcast against elements."""
    if isinstance(step, int | numbers.Integral):  # check_int refuses a bool
        return const(xp, _signed(check_int("step", step, _WORD)), xp.int32, device)
    if not hasattr(step, "dtype") or not xp.isdtype(
        step.dtype, ("signed integer", "unsigned integer")
    ):
        raise TypeError(
            f"step must be an int or an integer array; got {type(step).__name__} "
            f"{getattr(step, 'dtype', '')}".rstrip()
        )
    return xp.reshape(xp.astype(step, xp.int32), (*step.shape, 1))


def flat_blocks(
    key: Array, step: int | Array, count: int, *, xp: Namespace, device: Device
) -> tuple[Array, Array]:
    """Blocks ``0 .. count - 1`` of each step: two int32 arrays, shape S + (count,)."""
    steps = _steps(step, xp=xp, device=device)
    elements = xp.arange(count, dtype=xp.int32, device=device)
    return threefry2x32(key, steps, elements, xp=xp, device=device)


def flat_words(
    key: Array, step: int | Array, count: int, *, xp: Namespace, device: Device
) -> Array:
    """Words ``0 .. count - 1`` of each step, shape S + (count,)."""
    y0, y1 = flat_blocks(key, step, (count + 1) // 2, xp=xp, device=device)
    leading = y0.shape[:-1]
    words = xp.reshape(xp.stack([y0, y1], axis=-1), (*leading, 2 * y0.shape[-1]))
    return words[..., :count]
