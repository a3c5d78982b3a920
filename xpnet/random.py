"""Random numbers made on the device: Threefry-2x32, a counter-based generator in array-API code.

A counter-based generator is a keyed function from counters to random bits: the
numbers of a draw depend on (key, counter) alone, not on a state carried from one draw
to the next. Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror and Shaw, "Parallel
random numbers: as easy as 1, 2, 3", SC 2011; the generator of ``jax.random``) maps
a 64-bit key and a 64-bit counter, each two 32-bit words, to two 32-bit words, with
additions, rotations and exclusive ors only. Here it is written once against the
Array API standard, so the same seed gives the same numbers on every backend and
device. Nothing depends on the values in Python (no value is read back) and every
constant is made on the device by ``full``, so a draw traces under ``jax.jit`` and
makes no host tensor that a CUDA graph would have to copy in.

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

From words to numbers
---------------------
- :func:`uniform`, float32: the top 24 bits of a word, times 2**-24; float64: the top
  27 bits of a block's first word and the top 26 of its second, ``(a * 2**26 + b) *
  2**-53`` (NumPy's ``Generator.random`` recipe). Every multiple of the resolution in
  [0, 1) is equally likely; the values are exact, hence bit-identical everywhere.
- :func:`normal`: the Box-Muller transform of pairs of uniforms ``(u1, u2)``:
  ``sqrt(-2 log(1 - u1)) * (cos, sin)(2 pi u2)``. ``log``, ``cos`` and ``sin`` are
  not correctly rounded by every library, so normals agree across backends to a few
  units in the last place, not bit for bit; the tails stop at about 5.8 (float32)
  and 8.6 (float64) standard deviations.
- :func:`bernoulli`: true with probability ``p`` rounded to a multiple of 2**-16,
  from as few bits as that multiple needs: ``b`` bits a mask, ``b`` the smallest of
  1, 2, 4, 8 and 16 for which ``p`` is a multiple of ``2**-b`` (dropout masks are the
  largest draw of a training step: at ``p = 0.5`` one bit a mask, 64 masks a block).
- :func:`integers`: the top 31 bits of a word, modulo ``n``. Without rejection, the
  ``2**31 mod n`` smallest values are more likely than the others by a factor of at
  most ``1 + n / (2**31 - n)`` (``1 + 2.3e-5`` for the 50,000 rows of MNIST's
  training set).
- :func:`permutation`: the order of the 64-bit blocks ``threefry2x32(key, (s, i))``,
  ``i < n``, found by two stable ``argsort`` passes (second word, then first).
  Threefry with a fixed key is a bijection of the counters, so the ``n`` blocks are
  distinct: there are no ties to break, so no order is favoured by the sort.
"""

from __future__ import annotations

import math
import numbers
from types import ModuleType
from typing import Any

from xpnet._checks import real

__all__ = [
    "bernoulli",
    "bits",
    "blocks",
    "integers",
    "normal",
    "permutation",
    "stream_key",
    "threefry2x32",
    "uniform",
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


def _const(xp: ModuleType, value: int | float, dtype: Any, device: Any) -> Any:
    """A one-element array made on ``device`` (``full`` fills on the device: no host copy)."""
    return xp.full((1,), value, dtype=dtype, device=device)


def threefry2x32(
    key: Any, count0: Any, count1: Any, *, xp: ModuleType, device: Any
) -> tuple[Any, Any]:
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
    schedule = (k0, k1, k0 ^ k1 ^ _const(xp, _PARITY, xp.int32, device))
    rotations = [
        (
            _const(xp, r, xp.int32, device),
            _const(xp, 32 - r, xp.int32, device),
            _const(xp, (1 << r) - 1, xp.int32, device),
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
            x1 += _const(xp, s, xp.int32, device)
    return x0, x1


def stream_key(seed: int, stream: int, *, xp: ModuleType, device: Any) -> Any:
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
    _check_int("seed", seed, 2**64)
    _check_int("stream", stream, _WORD)
    seed_key = xp.concat(
        [
            _const(xp, _signed(seed >> 32), xp.int32, device),
            _const(xp, _signed(seed % _WORD), xp.int32, device),
        ]
    )
    y0, y1 = threefry2x32(
        seed_key,
        _const(xp, 0, xp.int32, device),
        _const(xp, _signed(stream), xp.int32, device),
        xp=xp,
        device=device,
    )
    return xp.concat([y0, y1])


def blocks(
    key: Any, step: Any, shape: tuple[int, ...], *, xp: ModuleType, device: Any
) -> tuple[Any, Any]:
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
    y0, y1 = _flat_blocks(key, step, _count(shape), xp=xp, device=device)
    leading = y0.shape[:-1]
    return xp.reshape(y0, (*leading, *shape)), xp.reshape(y1, (*leading, *shape))


def bits(key: Any, step: Any, shape: tuple[int, ...], *, xp: ModuleType, device: Any) -> Any:
    """The 32-bit words of one draw: word ``2j`` and ``2j + 1`` (C order) are block ``j``'s.

    Parameters are those of :func:`blocks`.

    Returns
    -------
    array, int32, shape S + shape
        The words (bits of unsigned 32-bit words).
    """
    words = _flat_words(key, step, _count(shape), xp=xp, device=device)
    return xp.reshape(words, (*words.shape[:-1], *shape))


def uniform(
    key: Any,
    step: Any,
    shape: tuple[int, ...],
    *,
    dtype: Any,
    xp: ModuleType,
    device: Any,
) -> Any:
    """Uniform numbers in [0, 1): multiples of 2**-24 (float32) or 2**-53 (float64).

    Float32 numbers come one a word (:func:`bits`), float64 numbers one a block
    (:func:`blocks`). Other parameters are those of :func:`blocks`.

    Parameters
    ----------
    dtype : dtype
        ``xp.float32`` or ``xp.float64``.

    Returns
    -------
    array, ``dtype``, shape S + shape
    """
    flat = _flat_uniform(key, step, _count(shape), dtype=dtype, xp=xp, device=device)
    return xp.reshape(flat, (*flat.shape[:-1], *shape))


def normal(
    key: Any,
    step: Any,
    shape: tuple[int, ...],
    *,
    dtype: Any,
    xp: ModuleType,
    device: Any,
) -> Any:
    """Standard normal numbers by the Box-Muller transform.

    Normals ``2j`` and ``2j + 1`` (C order) are ``r cos(theta)`` and ``r sin(theta)``
    with ``r = sqrt(-2 log(1 - u[2j]))``, ``theta = 2 pi u[2j + 1]`` and ``u`` the
    :func:`uniform` numbers of the same stream and step. Parameters are those of
    :func:`uniform`.

    Returns
    -------
    array, ``dtype``, shape S + shape
    """
    n = _count(shape)
    pairs = (n + 1) // 2
    u = _flat_uniform(key, step, 2 * pairs, dtype=dtype, xp=xp, device=device)
    leading = u.shape[:-1]
    u = xp.reshape(u, (*leading, pairs, 2))
    radius = xp.sqrt(_const(xp, -2.0, dtype, device) * xp.log1p(-u[..., 0]))
    angle = _const(xp, 2 * math.pi, dtype, device) * u[..., 1]
    z = xp.stack([radius * xp.cos(angle), radius * xp.sin(angle)], axis=-1)
    return xp.reshape(xp.reshape(z, (*leading, 2 * pairs))[..., :n], (*leading, *shape))


def bernoulli(
    key: Any, step: Any, shape: tuple[int, ...], p: float, *, xp: ModuleType, device: Any
) -> Any:
    """True with probability ``p`` (rounded to a multiple of 2**-16), from few bits each.

    With ``t = round(p * 2**16)``, a mask takes ``b`` bits, ``b`` the smallest of 1,
    2, 4, 8 and 16 with ``t`` a multiple of ``2**(16 - b)``: ``p = 0.5`` one bit,
    ``0.25`` and ``0.75`` two, ``0.3`` sixteen. Word ``j`` (:func:`bits`) holds masks
    ``j * f`` to ``j * f + f - 1`` (C order), ``f = 32 / b``, from its high bits down:
    each ``b``-bit field is compared with ``t / 2**(16 - b)``. So a probability is
    exact to 2**-17 and a mask of a coarse probability costs fewer rounds (a dropout
    mask of rate 0.5 needs 1/64 of a block a unit). Other parameters are those of
    :func:`blocks`.

    Parameters
    ----------
    p : float
        The probability of True, ``0 <= p <= 1``.

    Returns
    -------
    array, bool, shape S + shape
    """
    p = real("p", p, low=0, high=1, low_open=False)
    count = _count(shape)
    threshold, width = _threshold(p)
    fields = 32 // width
    words = _flat_words(key, step, -(-count // fields), xp=xp, device=device)
    # field k of a word is bits 32 - width (k + 1) .. 32 - width k - 1; a mask after the
    # (arithmetic) shift keeps the field alone
    field_mask = _const(xp, 2**width - 1, xp.int32, device)
    below_threshold = _const(xp, threshold, xp.int32, device)
    if fields <= 4:  # a few fields: one whole-array operation each is fastest
        shifted = [
            words >> _const(xp, 32 - width * (k + 1), xp.int32, device) for k in range(fields)
        ]
        below = xp.stack([(v & field_mask) < below_threshold for v in shifted], axis=-1)
    else:  # many: one broadcast operation over (words, fields)
        shifts = _const(xp, 32 - width, xp.int32, device) - _const(
            xp, width, xp.int32, device
        ) * xp.arange(fields, dtype=xp.int32, device=device)
        below = ((words[..., None] >> shifts) & field_mask) < below_threshold
    leading = below.shape[:-2]
    flat = xp.reshape(below, (*leading, fields * words.shape[-1]))[..., :count]
    return xp.reshape(flat, (*leading, *shape))


def _threshold(p: float) -> tuple[int, int]:
    """``(threshold, bits)``: a mask is a ``bits``-bit field below ``threshold``."""
    t = round(p * 2**16)
    for width in (1, 2, 4, 8):
        if t % 2 ** (16 - width) == 0:
            return t >> (16 - width), width
    return t, 16


def integers(
    key: Any, step: Any, shape: tuple[int, ...], n: int, *, xp: ModuleType, device: Any
) -> Any:
    """Integers in [0, n), one a word: the word's top 31 bits modulo ``n``.

    Drawn with replacement (batch rows, for instance); see the module notes for the
    small bias of the modulo. Other parameters are those of :func:`blocks`.

    Parameters
    ----------
    n : int
        The number of values, ``1 <= n < 2**31``.

    Returns
    -------
    array, int32, shape S + shape
    """
    _check_int("n", n, 2**31, low=1)
    words = _flat_words(key, step, _count(shape), xp=xp, device=device)
    values = xp.remainder(_top31(words, xp=xp, device=device), _const(xp, n, xp.int32, device))
    return xp.reshape(values, (*values.shape[:-1], *shape))


def permutation(key: Any, step: Any, n: int, *, xp: ModuleType, device: Any) -> Any:
    """A random permutation of ``range(n)``: the order of ``n`` distinct random blocks.

    Element ``i`` gets the block ``threefry2x32(key, (step, i))``, read as an
    unsigned 64-bit number (first word high); the permutation sorts them. Other
    parameters are those of :func:`blocks`.

    Parameters
    ----------
    n : int
        The number of items, ``0 <= n < 2**31``.

    Returns
    -------
    array, the default indexing dtype, shape S + (n,)
        Each row holds every integer of [0, n) once.
    """
    _check_int("n", n, 2**31)
    high, low = _flat_blocks(key, step, n, xp=xp, device=device)
    # unsigned order of the words = signed order with the top bit flipped
    flip = _const(xp, -(2**31), xp.int32, device)
    high, low = high ^ flip, low ^ flip
    by_low = xp.argsort(low, axis=-1, stable=True)
    by_high = xp.argsort(xp.take_along_axis(high, by_low, axis=-1), axis=-1, stable=True)
    return xp.take_along_axis(by_low, by_high, axis=-1)


def _check_int(name: str, value: Any, high: int, low: int = 0) -> int:
    """``value`` as an int; TypeError unless it is an integer, ValueError unless in [low, high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    number = int(value)
    if not low <= number < high:
        raise ValueError(f"{name} must satisfy {low} <= {name} < {high}; got {number}")
    return number


def _count(shape: Any) -> int:
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


def _steps(step: Any, *, xp: ModuleType, device: Any) -> Any:
    """``step`` as an int32 array of shape S + (1,), ready to broadcast against elements."""
    if isinstance(step, numbers.Integral):  # _check_int refuses a bool
        return _const(xp, _signed(_check_int("step", step, _WORD)), xp.int32, device)
    if not hasattr(step, "dtype") or not xp.isdtype(
        step.dtype, ("signed integer", "unsigned integer")
    ):
        raise TypeError(
            f"step must be an int or an integer array; got {type(step).__name__} "
            f"{getattr(step, 'dtype', '')}".rstrip()
        )
    return xp.reshape(xp.astype(step, xp.int32), (*step.shape, 1))


def _flat_blocks(key: Any, step: Any, count: int, *, xp: ModuleType, device: Any) -> Any:
    """Blocks ``0 .. count - 1`` of each step: two int32 arrays, shape S + (count,)."""
    steps = _steps(step, xp=xp, device=device)
    elements = xp.arange(count, dtype=xp.int32, device=device)
    return threefry2x32(key, steps, elements, xp=xp, device=device)


def _flat_words(key: Any, step: Any, count: int, *, xp: ModuleType, device: Any) -> Any:
    """Words ``0 .. count - 1`` of each step, shape S + (count,)."""
    y0, y1 = _flat_blocks(key, step, (count + 1) // 2, xp=xp, device=device)
    leading = y0.shape[:-1]
    words = xp.reshape(xp.stack([y0, y1], axis=-1), (*leading, 2 * y0.shape[-1]))
    return words[..., :count]


def _top31(words: Any, *, xp: ModuleType, device: Any) -> Any:
    """The top 31 bits of each word, as a non-negative int32."""
    return (words >> _const(xp, 1, xp.int32, device)) & _const(xp, 2**31 - 1, xp.int32, device)


def _flat_uniform(
    key: Any, step: Any, count: int, *, dtype: Any, xp: ModuleType, device: Any
) -> Any:
    """``count`` uniforms of each step, shape S + (count,)."""
    if dtype == xp.float32:
        words = _flat_words(key, step, count, xp=xp, device=device)
        top24 = (words >> _const(xp, 8, xp.int32, device)) & _const(xp, 2**24 - 1, xp.int32, device)
        return xp.astype(top24, dtype) * _const(xp, 2.0**-24, dtype, device)
    if dtype == xp.float64:
        y0, y1 = _flat_blocks(key, step, count, xp=xp, device=device)
        a = (y0 >> _const(xp, 5, xp.int32, device)) & _const(xp, 2**27 - 1, xp.int32, device)
        b = (y1 >> _const(xp, 6, xp.int32, device)) & _const(xp, 2**26 - 1, xp.int32, device)
        scale = _const(xp, 2.0**26, dtype, device)
        if scale.dtype != xp.float64:
            raise ValueError(
                f"this namespace makes {scale.dtype} arrays when asked for float64 (JAX "
                "outside its 64-bit mode): use float32, or turn on JAX's 64-bit mode "
                "(jax.config.update('jax_enable_x64', True)) before making any array"
            )
        return (xp.astype(a, dtype) * scale + xp.astype(b, dtype)) * _const(
            xp, 2.0**-53, dtype, device
        )
    raise ValueError(f"dtype must be float32 or float64 of the namespace; got {dtype!r}")
