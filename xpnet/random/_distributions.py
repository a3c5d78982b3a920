"""Numbers from Threefry's words: uniforms, normals, Bernoulli masks, integers, permutations.

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

from xpnet._checks import real
from xpnet._typing import Array, ArrayDType, Device, Namespace
from xpnet.random._threefry import (
    check_int,
    const,
    element_count,
    flat_blocks,
    flat_words,
)

__all__ = ["bernoulli", "integers", "normal", "permutation", "uniform"]


def uniform(
    key: Array,
    step: int | Array,
    shape: tuple[int, ...],
    *,
    dtype: ArrayDType,
    xp: Namespace,
    device: Device,
) -> Array:
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
    flat = _flat_uniform(key, step, element_count(shape), dtype=dtype, xp=xp, device=device)
    return xp.reshape(flat, (*flat.shape[:-1], *shape))


def normal(
    key: Array,
    step: int | Array,
    shape: tuple[int, ...],
    *,
    dtype: ArrayDType,
    xp: Namespace,
    device: Device,
) -> Array:
    """Standard normal numbers by the Box-Muller transform.

    Normals ``2j`` and ``2j + 1`` (C order) are ``r cos(theta)`` and ``r sin(theta)``
    with ``r = sqrt(-2 log(1 - u[2j]))``, ``theta = 2 pi u[2j + 1]`` and ``u`` the
    :func:`uniform` numbers of the same stream and step. Parameters are those of
    :func:`uniform`.

    Returns
    -------
    array, ``dtype``, shape S + shape
    """
    n = element_count(shape)
    pairs = (n + 1) // 2
    u = _flat_uniform(key, step, 2 * pairs, dtype=dtype, xp=xp, device=device)
    leading = u.shape[:-1]
    u = xp.reshape(u, (*leading, pairs, 2))
    radius = xp.sqrt(const(xp, -2.0, dtype, device) * xp.log1p(-u[..., 0]))
    angle = const(xp, 2 * math.pi, dtype, device) * u[..., 1]
    z = xp.stack([radius * xp.cos(angle), radius * xp.sin(angle)], axis=-1)
    return xp.reshape(xp.reshape(z, (*leading, 2 * pairs))[..., :n], (*leading, *shape))


def bernoulli(
    key: Array,
    step: int | Array,
    shape: tuple[int, ...],
    p: float,
    *,
    xp: Namespace,
    device: Device,
) -> Array:
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
    count = element_count(shape)
    threshold, width = _threshold(p)
    fields = 32 // width
    words = flat_words(key, step, -(-count // fields), xp=xp, device=device)
    # field k of a word is bits 32 - width (k + 1) .. 32 - width k - 1; a mask after the
    # (arithmetic) shift keeps the field alone
    field_mask = const(xp, 2**width - 1, xp.int32, device)
    below_threshold = const(xp, threshold, xp.int32, device)
    if fields <= 4:  # a few fields: one whole-array operation each is fastest
        shifted = [
            words >> const(xp, 32 - width * (k + 1), xp.int32, device) for k in range(fields)
        ]
        below = xp.stack([(v & field_mask) < below_threshold for v in shifted], axis=-1)
    else:  # many: one broadcast operation over (words, fields)
        shifts = const(xp, 32 - width, xp.int32, device) - const(
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
    key: Array, step: int | Array, shape: tuple[int, ...], n: int, *, xp: Namespace, device: Device
) -> Array:
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
    check_int("n", n, 2**31, low=1)
    words = flat_words(key, step, element_count(shape), xp=xp, device=device)
    values = xp.remainder(_top31(words, xp=xp, device=device), const(xp, n, xp.int32, device))
    return xp.reshape(values, (*values.shape[:-1], *shape))


def permutation(key: Array, step: int | Array, n: int, *, xp: Namespace, device: Device) -> Array:
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
    check_int("n", n, 2**31)
    high, low = flat_blocks(key, step, n, xp=xp, device=device)
    # unsigned order of the words = signed order with the top bit flipped
    flip = const(xp, -(2**31), xp.int32, device)
    high, low = high ^ flip, low ^ flip
    by_low = xp.argsort(low, axis=-1, stable=True)
    by_high = xp.argsort(xp.take_along_axis(high, by_low, axis=-1), axis=-1, stable=True)
    return xp.take_along_axis(by_low, by_high, axis=-1)


def _flat_uniform(
    key: Array, step: int | Array, count: int, *, dtype: ArrayDType, xp: Namespace, device: Device
) -> Array:
    """``count`` uniforms of each step, shape S + (count,)."""
    if dtype == xp.float32:
        words = flat_words(key, step, count, xp=xp, device=device)
        top24 = (words >> const(xp, 8, xp.int32, device)) & const(xp, 2**24 - 1, xp.int32, device)
        return xp.astype(top24, dtype) * const(xp, 2.0**-24, dtype, device)
    if dtype == xp.float64:
        y0, y1 = flat_blocks(key, step, count, xp=xp, device=device)
        a = (y0 >> const(xp, 5, xp.int32, device)) & const(xp, 2**27 - 1, xp.int32, device)
        b = (y1 >> const(xp, 6, xp.int32, device)) & const(xp, 2**26 - 1, xp.int32, device)
        scale = const(xp, 2.0**26, dtype, device)
        if scale.dtype != xp.float64:
            raise ValueError(
                f"this namespace makes {scale.dtype} arrays when asked for float64 (JAX "
                "outside its 64-bit mode): use float32, or turn on JAX's 64-bit mode "
                "(jax.config.update('jax_enable_x64', True)) before making any array"
            )
        return (xp.astype(a, dtype) * scale + xp.astype(b, dtype)) * const(
            xp, 2.0**-53, dtype, device
        )
    raise ValueError(f"dtype must be float32 or float64 of the namespace; got {dtype!r}")


def _top31(words: Array, *, xp: Namespace, device: Device) -> Array:
    """The top 31 bits of each word, as a non-negative int32."""
    return (words >> const(xp, 1, xp.int32, device)) & const(xp, 2**31 - 1, xp.int32, device)
