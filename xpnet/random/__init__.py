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

:mod:`xpnet.random._threefry` holds the generator (how keys, counters and words are
made), :mod:`xpnet.random._distributions` the numbers made from its words.
"""

from xpnet.random._distributions import bernoulli, integers, normal, permutation, uniform
from xpnet.random._threefry import bits, blocks, stream_key, threefry2x32

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
