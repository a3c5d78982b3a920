"""Time one training step's randomness: the counter-based generator against NumPy's.

Run it as ``python benchmarks/random_draws.py`` (``--rounds N``, ``--chunk K``). At
the sizes of the ``best`` and ``best-augmented`` recipes (batch 128, hidden 2048) it
times, per step:

- ``mask``: a dropout mask (128, 2048), kept with probability 0.5;
- ``affine``: the affine distortion's uniforms (128, 5), float32;
- ``field``: the elastic field's uniforms, float32: (128, 2, 28, 28) as the host drew
  them before training drew on the device, (128, 2, 8, 8) as :mod:`xpnet.random` draws
  them now (mapped to 28x28 afterwards, :mod:`xpnet.augment`);
- ``all``: the three together,

drawn by NumPy's host ``Generator`` (as training drew them before it drew on the device), by
:mod:`xpnet.random` on NumPy (eager), and by :mod:`xpnet.random` on JAX compiled
with ``jax.jit``, one step a call and ``K`` steps a call (per step). The methods
alternate, round after round; it prints the median of the rounds, in milliseconds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xpnet import random as xr
from xpnet.augment import AUGMENTATIONS
from xpnet.backend import resolve_backend

BATCH, HIDDEN, IMAGE = 128, 2048, (28, 28)
FIELD = AUGMENTATIONS["affine+elastic"].field_shape  # type: ignore[union-attr]
KEEP = 0.5
SEED = 0


def host_draws(rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    """NumPy's Generator, the way training drew on the host."""
    return {
        "mask": lambda: rng.random((BATCH, HIDDEN)) >= 1 - KEEP,
        "affine": lambda: rng.random((BATCH, 5), dtype=np.float32) * 2 - 1,
        "field": lambda: rng.random((BATCH, 2, *IMAGE), dtype=np.float32) * 2 - 1,
    }


def device_draws(xp: Any, device: Any) -> dict[str, Callable[[Any], Any]]:
    """:mod:`xpnet.random`, each kind of randomness on its own stream; ``step`` any shape."""
    on = {"xp": xp, "device": device}
    keys = [xr.stream_key(SEED, stream, **on) for stream in range(3)]
    return {
        "mask": lambda step: xr.bernoulli(keys[0], step, (BATCH, HIDDEN), KEEP, **on),
        "affine": lambda step: (
            xr.uniform(keys[1], step, (BATCH, 5), dtype=xp.float32, **on) * 2 - 1
        ),
        "field": lambda step: (
            xr.uniform(keys[2], step, (BATCH, 2, *FIELD), dtype=xp.float32, **on) * 2 - 1
        ),
    }


def with_all(draws: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    parts = list(draws.values())
    return {**draws, "all": lambda *step: [part(*step) for part in parts]}


def methods(chunk: int) -> dict[str, dict[str, Callable[[], Any]]]:
    """Per method, per kind: a call that draws (and waits for) ``per_call`` steps."""
    numpy = resolve_backend("numpy")
    rng = np.random.default_rng(SEED)
    eager = with_all(device_draws(numpy.xp, numpy.device))
    found: dict[str, dict[str, Callable[[], Any]]] = {
        "NumPy Generator (host)": with_all(host_draws(rng)),
        "xpnet.random, NumPy eager": {k: (lambda f=f: f(7)) for k, f in eager.items()},
    }
    try:
        import jax
    except ImportError:
        return found
    backend = resolve_backend("jax")
    xp, device = backend.xp, backend.device
    draws = with_all(device_draws(xp, device))
    one = xp.asarray(7, dtype=xp.int32, device=device)
    steps = xp.arange(chunk, dtype=xp.int32, device=device)
    jitted = {k: jax.jit(f) for k, f in draws.items()}
    found["xpnet.random, JAX jit"] = {
        k: (lambda f=f: jax.block_until_ready(f(one))) for k, f in jitted.items()
    }
    found[f"xpnet.random, JAX jit, {chunk} steps a call"] = {
        k: (lambda f=f: jax.block_until_ready(f(steps))) for k, f in jitted.items()
    }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chunk", type=int, default=16)
    args = parser.parse_args()
    table = methods(args.chunk)
    kinds = ["mask", "affine", "field", "all"]
    times: dict[tuple[str, str], list[float]] = {(m, k): [] for m in table for k in kinds}
    for calls in table.values():  # warm up: compile, fill caches
        for kind in kinds:
            calls[kind]()
    for _ in range(args.rounds):
        for name, calls in table.items():
            for kind in kinds:
                start = time.perf_counter()
                calls[kind]()
                times[name, kind].append(time.perf_counter() - start)
    print(f"{platform.processor() or platform.machine()}, median of {args.rounds} rounds")
    print("| method | " + " | ".join(f"{k} (ms/step)" for k in kinds) + " |")
    print("| --- |" + " ---: |" * len(kinds))
    for name in table:
        per_call = args.chunk if "steps a call" in name else 1
        cells = [f"{1e3 * statistics.median(times[name, k]) / per_call:.3f}" for k in kinds]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
