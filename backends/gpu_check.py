"""The GPU check: xpnet on every GPU backend of an NVIDIA machine, in one command.

    python backends/gpu_check.py          # in an environment with cupy, torch (CUDA), jax (GPU)
    nox -s gpu                            # the same, in a fresh environment nox builds

It runs, and reports each step's outcome:

1. the test suite on cupy, torch on ``cuda:0`` and JAX on its GPU (``XPNET_BACKENDS``
   names each, so a backend that cannot run fails rather than skips);
2. the equivalence table (``backends/equivalence.py``), GPU devices included;
3. the GPU part of the benchmark (``benchmarks/bench.py --only gpu``), which writes
   the GPU section of ``benchmarks/RESULTS.md``.

Without an NVIDIA GPU it says so and exits 1: nothing was checked. The MNIST tests
need the data (``XPNET_DATA`` or ``xpnet data``); ``CI=1`` is set for the test run,
so missing data fails instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GPU_BACKENDS = "cupy,torch@cuda:0,jax@gpu:0"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from xpnet.backend._table import cuda_driver_major

    if cuda_driver_major() is None:
        print(
            "gpu_check: this machine has no NVIDIA GPU with a CUDA driver (nvidia-smi): "
            "nothing was checked",
            file=sys.stderr,
        )
        return 1
    subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                    "--format=csv"], check=False)  # fmt: skip
    environment = {**os.environ, "XPNET_BACKENDS": GPU_BACKENDS, "CI": "1"}
    steps = {
        "tests on cupy, torch cuda:0, jax gpu:0": (
            [sys.executable, "-m", "pytest", "-m", "not gradcheck", "-q", "-p", "no:cacheprovider",
             *argv],
            environment,
        ),
        "equivalence table": ([sys.executable, "backends/equivalence.py"], dict(os.environ)),
        "GPU benchmark": (
            [sys.executable, "benchmarks/bench.py", "--only", "gpu"],
            dict(os.environ),
        ),
    }  # fmt: skip
    outcomes = {}
    for name, (command, env) in steps.items():
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        outcomes[name] = (code, time.perf_counter() - start)
    print("\n=== GPU check")
    for name, (code, seconds) in outcomes.items():
        print(f"{'passed' if code == 0 else f'FAILED ({code})':<12} {name} ({seconds:.0f} s)")
    return 0 if all(code == 0 for code, _ in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
