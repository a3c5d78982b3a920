"""Every installed backend, on each of its devices and training paths, against NumPy float64.

For each backend, device, dtype and training path (the eager loop, and the compiled
one where the backend has it: JAX's jit + scan, torch's CUDA graphs) this compares,
from the same seed and data: the initial scores, the loss and gradients, and a
200-step training trajectory (momentum SGD). It prints a table of the largest
relative difference of each, and exits 1 if any exceeds the dtype's tolerance.

JAX runs with 64-bit mode on and float32 matrix products at full precision (JAX's
default on NVIDIA GPUs is TF32), so that every row compares like with like.

Run it with ``nox -s equivalence`` or ``python backends/equivalence.py``.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet.backend import BACKENDS, Backend
from xpnet.testing import TOLERANCES, relative_difference
from xpnet.training import compiled_runner_kind

SIZES = (50, 40, 10)  # D, H, C
SEED = 0
STEPS = 200


def configure() -> None:
    """array-api-strict at its strictest; JAX in float64, float32 products in full precision."""
    if importlib.util.find_spec("array_api_strict") is not None:
        import array_api_strict

        array_api_strict.reset_array_api_strict_flags()
        array_api_strict.set_array_api_strict_flags(
            boolean_indexing=False, data_dependent_shapes=False
        )
    if importlib.util.find_spec("jax") is not None:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")


def measure(
    backend: Backend | str, dtype: str, compile: bool, X: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """Scores, loss, gradients and a training trajectory on one backend."""
    D, H, C = SIZES
    net = TwoLayerNet(D, H, C, std=1e-1, backend=backend, dtype=dtype, seed=SEED)
    scores = net.loss(X)
    loss, grads = net.loss(X, y, reg=0.1)
    stats = net.train(
        X,
        y,
        X,
        y,
        learning_rate=0.05,
        learning_rate_decay=0.95,
        reg=1e-3,
        num_iters=STEPS,
        batch_size=32,
        momentum=0.9,
        compile=compile,
    )
    return {
        "scores": to_numpy(scores),
        "loss": np.array(loss),
        "gradients": np.concatenate([to_numpy(g).ravel() for g in grads.values()]),
        "trajectory": np.array(stats["loss_history"]),
    }


def available() -> list[Backend]:
    """Every backend and device this machine can run, each named once."""
    usable = []
    for name, spec in BACKENDS.items():
        try:
            devices = spec.test_devices()
            usable += [resolve_backend(name, device) for device in devices]
        except (ImportError, RuntimeError) as err:
            print(f"skipping {name}: {err}")
    return usable


def main() -> int:
    configure()
    rng = np.random.default_rng(SEED)
    X, y = rng.standard_normal((256, SIZES[0])), rng.integers(0, SIZES[2], 256)
    reference = measure("numpy", "float64", False, X, y)

    quantities = list(reference)
    backends = available()
    names = [str(backend) for backend in backends]
    paths = ["eager loop", *(kind.name for b in backends if (kind := compiled_runner_kind(b)))]
    # Each column as wide as its widest entry, and two spaces apart.
    name_width = max(map(len, ["backend", *names])) + 2
    path_width = max(map(len, ["path", *paths])) + 2
    header = f"{'backend':<{name_width}}{'path':<{path_width}}{'dtype':<9}" + "".join(
        f"{q:>12}" for q in quantities
    )
    print(f"largest relative difference from numpy float64 ({STEPS}-step trajectory)")
    print(header + f"{'tolerance':>11}  result")
    failures = 0
    for backend in backends:
        paths = [False] + ([True] if compiled_runner_kind(backend) is not None else [])
        for compile in paths:
            for dtype, tolerance in TOLERANCES.items():
                try:
                    result = measure(backend, dtype, compile, X, y)
                except ValueError as err:  # a dtype the device lacks
                    print(f"{backend!s:<{name_width}}{'':<{path_width}}{dtype:<9}  not run: {err}")
                    continue
                diffs = [relative_difference(result[q], reference[q]) for q in quantities]
                ok = max(diffs) <= tolerance
                failures += not ok
                path = compiled_runner_kind(backend).name if compile else "eager loop"
                print(
                    f"{backend!s:<{name_width}}{path:<{path_width}}{dtype:<9}"
                    + "".join(f"{d:>12.1e}" for d in diffs)
                    + f"{tolerance:>11.0e}  {'ok' if ok else 'FAIL'}"
                )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
