"""Many networks at once: member-steps per second of K networks trained together
(``xpnet.training.fit_many``) against the same K trained one after another (``fit``).

Run it as ``python benchmarks/many.py``. At the lab's sizes (784-175-10, batch 100,
SGD with momentum, float32, 55,000 training rows of MNIST's shape), for each backend and
K in ``--sizes``, in one process and side by side within each repeat: one network
alone for ``--steps`` steps, and K networks of different learning rates and seeds
together for as many. K runs one after another take K times one run (they are alike),
so the ratio is ``K * t_alone / t_together``; every figure is the median of
``--repeats`` repeats, after a warm-up (compilation, a CUDA graph's capture) that is
not timed. The data are random rows (speed does not depend on them).

``--backends`` names them as ``XPNET_BACKENDS`` does (``numpy,jax,torch``;
``jax@gpu:0``, ``torch@cuda:0``, ``cupy`` on a GPU); ``--markdown FILE`` writes the
table. ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are unset for this process, as
on a user's machine (some environments set them to work around old OpenBLAS builds,
which slows a current NumPy).
"""

from __future__ import annotations

import os
import sys

from _blas_overrides import run_without_blas_overrides

run_without_blas_overrides()  # before NumPy loads

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpnet import TwoLayerNet  # noqa: E402
from xpnet.backend import resolve_backend, to_numpy  # noqa: E402
from xpnet.training import ComputeSettings, TrainSettings, fit, fit_many  # noqa: E402

D, H, C, B, ROWS = 784, 175, 10, 100, 55_000


def _settings(backend: str, device: object, seed: int, learning_rate: float, steps: int,
              compile: object) -> TrainSettings:  # fmt: skip
    return TrainSettings(
        input_size=D, hidden_size=H, output_size=C, std=1e-2, seed=seed, num_iters=steps,
        batch_size=B, learning_rate=learning_rate, learning_rate_decay=0.95, reg=5e-6,
        momentum=0.9, compile=compile,
        compute=ComputeSettings(backend, device=device, dtype="float32"),
    )  # fmt: skip


def _networks(backend: str, device: object, count: int) -> list[TwoLayerNet]:
    return [TwoLayerNet(D, H, C, std=1e-2, seed=k, backend=resolve_backend(backend, device),
                        dtype="float32") for k in range(count)]  # fmt: skip


def _wait(params: dict) -> None:
    to_numpy(params["b2"])  # the device's work done


def measure(backend: str, device: object, sizes: list[int], steps: int, repeats: int,
            compile: object) -> list[dict]:  # fmt: skip
    """Rows ``{backend, K, alone, together, ratio}``: member-steps per second (medians)."""
    rng = np.random.default_rng(0)
    X = rng.random((ROWS, D), dtype=np.float32)
    y = rng.integers(0, C, ROWS)
    rows = []
    for K in sizes:
        rates = [10 ** rng.uniform(-4, -2) for _ in range(K)]

        def alone(rates: list[float] = rates) -> float:
            net = _networks(backend, device, 1)[0]
            s = _settings(backend, device, 0, rates[0], steps, compile)
            start = time.perf_counter()
            _wait(fit(net.params, s, X, y, rng=net.rng).params)
            return time.perf_counter() - start

        def together(K: int = K, rates: list[float] = rates) -> float:
            nets = _networks(backend, device, K)
            settings = [_settings(backend, device, k, rates[k], steps, compile) for k in range(K)]
            start = time.perf_counter()
            results = fit_many([n.params for n in nets], settings, X, y,
                               rngs=[n.rng for n in nets])  # fmt: skip
            _wait(results[-1].params)
            return time.perf_counter() - start

        alone(), together()  # warm-up: compilation, capture, first allocations
        times: dict[str, list[float]] = {"alone": [], "together": []}
        for _ in range(repeats):
            times["alone"].append(alone())
            times["together"].append(together())
        t_alone = statistics.median(times["alone"])
        t_together = statistics.median(times["together"])
        row = {"backend": f"{backend}" + (f"@{device}" if device else ""), "K": K,
               "alone": steps / t_alone, "together": K * steps / t_together,
               "ratio": K * t_alone / t_together, "path": None}  # fmt: skip
        print(f"{row['backend']:>14} K={K:<3} alone {row['alone']:8.0f} member-steps/s   "
              f"together {row['together']:9.0f} member-steps/s   ratio {row['ratio']:5.2f}x",
              flush=True)  # fmt: skip
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="numpy,jax,torch")
    parser.add_argument("--sizes", default="1,4,16,64")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eager", action="store_true", help="compile=False on every backend")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    sizes = [int(k) for k in args.sizes.split(",")]
    unset = os.environ.get("XPNET_BENCH_UNSET")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.steps} steps, {args.repeats} repeats" +
          (f"; unset for this process: {unset}" if unset else ""), flush=True)  # fmt: skip
    rows = []
    for entry in args.backends.split(","):
        name, _, device = entry.partition("@")
        resolved = resolve_backend(name, device or None)
        rows += measure(name, resolved.device if device else None, sizes, args.steps,
                        args.repeats, False if args.eager else "auto")  # fmt: skip
    if args.markdown:
        lines = [
            f"Measured {datetime.date.today()} by `python benchmarks/many.py "
            f"{' '.join(argv)}` ({args.steps} steps, median of {args.repeats}; "
            f"{os.cpu_count()} CPUs{'; unset: ' + unset if unset else ''}).",
            "",
            "| backend | K | one alone (steps/s) | K together (member-steps/s) "
            "| together / one after another |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]  # fmt: skip
        lines += [f"| {r['backend']} | {r['K']} | {r['alone']:.0f} | {r['together']:.0f} | "
                  f"{r['ratio']:.2f}x |" for r in rows]  # fmt: skip
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
