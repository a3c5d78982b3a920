"""Every installed backend against the NumPy float64 reference.

For each backend and dtype this compares, from the same seed and data: the
initial scores, the loss and gradients, and a 200-step training trajectory
(momentum SGD). It prints a table of the largest relative difference of each,
and exits 1 if any exceeds the dtype's tolerance.

Run it with ``nox -s equivalence`` or ``python backends/equivalence.py``.
"""

from __future__ import annotations

import sys

import numpy as np

from xpnet import SUPPORTED_BACKENDS, TwoLayerNet, resolve_backend, to_numpy
from xpnet.backend import enable_jax_float64, use_strictest_array_api_strict

# Largest relative difference allowed, per dtype. float64 agrees to rounding;
# float32 carries ~1e-7 relative error per operation, grown by 200 SGD steps.
TOLERANCES = {"float64": 1e-9, "float32": 1e-4}
SIZES = (50, 40, 10)  # D, H, C
SEED = 0
STEPS = 200


def relative_difference(a: np.ndarray, reference: np.ndarray) -> float:
    """``max|a - ref| / max|ref|``: the error measured against the reference's scale."""
    a, reference = np.asarray(a, np.float64), np.asarray(reference, np.float64)
    return float(np.max(np.abs(a - reference)) / max(np.max(np.abs(reference)), 1e-300))


def measure(backend: str, dtype: str, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
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
    )
    return {
        "scores": to_numpy(scores),
        "loss": np.array(loss),
        "gradients": np.concatenate([to_numpy(g).ravel() for g in grads.values()]),
        "trajectory": np.array(stats["loss_history"]),
    }


def available_backends() -> list[str]:
    usable = []
    for name in SUPPORTED_BACKENDS:
        try:
            resolve_backend(name)
        except (ImportError, RuntimeError) as err:
            print(f"skipping {name}: {err}")
        else:
            usable.append(name)
    return usable


def main() -> int:
    use_strictest_array_api_strict()
    enable_jax_float64()
    rng = np.random.default_rng(SEED)
    X, y = rng.standard_normal((256, SIZES[0])), rng.integers(0, SIZES[2], 256)
    reference = measure("numpy", "float64", X, y)
    backends = available_backends()

    quantities = list(reference)
    header = f"{'backend':<18}{'dtype':<9}" + "".join(f"{q:>12}" for q in quantities)
    print(f"largest relative difference from numpy float64 ({STEPS}-step trajectory)")
    print(header + f"{'tolerance':>11}  result")
    failures = 0
    for backend in backends:
        for dtype, tolerance in TOLERANCES.items():
            result = measure(backend, dtype, X, y)
            diffs = [relative_difference(result[q], reference[q]) for q in quantities]
            ok = max(diffs) <= tolerance
            failures += not ok
            print(
                f"{backend:<18}{dtype:<9}"
                + "".join(f"{d:>12.1e}" for d in diffs)
                + f"{tolerance:>11.0e}  {'ok' if ok else 'FAIL'}"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
