"""Benchmarks run as on a user's machine: without ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE``, which some environments set to work around old OpenBLAS builds
and which slow a current NumPy about twofold.

Each benchmark calls :func:`run_without_blas_overrides` before NumPy is imported; the
process then starts again without them, and ``XPNET_BENCH_UNSET`` says what was unset,
for the benchmark's report.
"""

from __future__ import annotations

import os
import sys

OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def run_without_blas_overrides() -> None:
    """Start this process again without the OpenBLAS overrides, if any is set."""
    unset = [name for name in OVERRIDES if name in os.environ]
    if not unset:
        return
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    env["XPNET_BENCH_UNSET"] = ",".join(f"{name}={os.environ[name]}" for name in unset)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)
