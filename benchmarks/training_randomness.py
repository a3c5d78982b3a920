"""Steps per second of the recipes that draw randomness, against another version of xpnet.

    python benchmarks/training_randomness.py --before DIR [--rounds N]

``DIR`` is a checkout of the code to compare with (``git worktree add DIR COMMIT``).
Round after round, each configuration (``best`` and ``best-augmented``, at the recipe's
hidden size 2048 and at 64, NumPy eager and JAX ``jit`` on the CPU, float32, batch 128,
on random data of MNIST's shape) is measured by the two versions in turn, each
measure in a fresh process importing xpnet from ``DIR`` or from this checkout (the
order alternating from round to round), so that both see the same machine load and no
measure inherits another's threads or caches. Each measure is
steps per second after start-up: from the end of the second chunk of steps (JAX has
compiled by then) to the end of the last, waiting for the device at each chunk's end.
It prints the median of the rounds and the ratio, this checkout over ``DIR``.

Like ``bench.py``, it unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for its own
processes, as on a user's machine, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

#: (recipe, hidden size, backend, steps to time), in the order of the table. With the
#: warm-up, every measure stays inside the first epoch (429 steps): an epoch's end would
#: add its accuracy check, and on JAX the compilation of a shorter chunk.
CONFIGS = [
    (recipe, hidden, backend, steps)
    for recipe in ("best", "best-augmented")
    for hidden, numpy_steps in ((2048, 150), (64, 400))
    for backend, steps in (("numpy", numpy_steps), ("jax", 200))
]
HERE = Path(__file__).resolve().parents[1]


def measure(
    recipe_name: str, hidden: int, backend: str, steps: int, device: object = None
) -> float:
    """Steps per second after start-up, float32, of a recipe at a hidden size (in a
    worker: xpnet is the worker's). JAX runs on its CPU unless ``device`` says otherwise;
    ``benchmarks/gpu.py`` measures the GPU rows with this function."""
    import numpy as np

    from xpnet import TwoLayerNet
    from xpnet.recipes import RECIPES
    from xpnet.training import ComputeSettings

    try:
        from xpnet.training import compiled_runner_kind
    except ImportError:  # a checkout from before the runners moved to xpnet.training
        from xpnet.backend import compiled_runner_kind

    if backend == "jax" and device is None:
        device = "cpu"
    recipe = replace(RECIPES[recipe_name], hidden_size=hidden)
    compute = ComputeSettings(backend=backend, device=device, dtype="float32")
    settings = recipe.settings(input_size=784, output_size=10, seed=0, compute=compute)
    rng = np.random.default_rng(0)
    X = rng.random((55_000, 784), dtype=np.float32) - 0.5
    y = rng.integers(0, 10, 55_000)
    net = TwoLayerNet(784, hidden, 10, backend=settings.compute.resolved, dtype="float32",
                      seed=0, init="he")  # fmt: skip
    X_device, y_device = net.backend.asarray(X), net.backend.asarray(y)
    marks: list[tuple[int, float]] = []

    def progress(iteration: int, loss: object, learning_rate: float) -> None:
        float(loss)  # wait for the device
        marks.append((iteration, time.perf_counter()))

    # two chunks of warm-up: one step each on an eager loop, up to 100 on a compiled path
    warm_up = 2 if compiled_runner_kind(net.backend) is None else 200
    chunked = replace(settings, num_iters=steps + warm_up)
    # TwoLayerNet.train, the call both versions have, with the settings the net leaves open
    network = ("input_size", "hidden_size", "output_size", "init", "std", "seed", "compute")
    keywords = {f.name: getattr(chunked, f.name) for f in fields(chunked) if f.name not in network}
    net.train(X_device, y_device, None, None, progress=progress, **keywords)
    (first, start), (last, stop) = marks[1], marks[-1]
    return (last - first) / (stop - start)


def worker() -> None:
    """Answer the JSON config on stdin with the steps per second."""
    print(json.dumps(measure(*json.loads(sys.stdin.readline()))), flush=True)


def ask(path: Path, config: tuple[str, int, str, int]) -> float:
    """One measure of ``config`` in a fresh process importing xpnet from ``path``."""
    unset = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PYTHONPATH"] = str(path)
    done = subprocess.run(
        [sys.executable, __file__, "--worker"], cwd=path, env=env, text=True,
        input=json.dumps(config) + "\n", capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the measure of {config} with {path} failed:\n{done.stderr}")
    return float(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the measures, as on a user's machine")
    paths = {"before": args.before.resolve(), "after": HERE}
    times: dict[tuple[str, tuple[str, int, str, int]], list[float]] = {}
    for round_ in range(args.rounds):
        for config in CONFIGS:
            order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
            for name in order:
                times.setdefault((name, config), []).append(ask(paths[name], config))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"median of {args.rounds} rounds, float32, batch 128")  # fmt: skip
    print("| recipe | hidden | backend | before (steps/s) | after (steps/s) | after / before |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for config in CONFIGS:
        before = statistics.median(times["before", config])
        after = statistics.median(times["after", config])
        path = "NumPy eager" if config[2] == "numpy" else "JAX jit"
        print(f"| `{config[0]}` | {config[1]} | {path} | {before:.0f} | {after:.0f} | "
              f"{after / before:.2f} |")  # fmt: skip


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        main()
