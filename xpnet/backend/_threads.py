"""The CPU threads a computation runs on: as many as suit the size of its matrix
products, set for its duration and restored after.

A second BLAS thread pays for itself only on a product large enough to split; below that,
on a machine whose cores are busy with other work (a browser, a test run, another user),
the threads wait on each other and a training step takes several times as long, while
on an idle machine the second thread gains less than twofold (``benchmarks/THREADS.md``
has the measurements). :data:`THREADS_BY_SIZE` says, by the size of a computation's
largest product, how many threads to use; :func:`choose_threads` reads it, and
:func:`using_threads` sets the thread pools of the BLAS and OpenMP libraries (through
``threadpoolctl``, which finds OpenBLAS, MKL, BLIS and the OpenMP runtimes loaded in the
process) and torch's own pool, and restores them after.

The choice depends on the size alone, never on how busy the machine is at the time: a
product's last bits depend on how many threads share it, so a choice that followed the
load would give the same seed other numbers from one run to the next. It never exceeds
the threads the process allows now (the BLAS pool's size, or torch's):
``OPENBLAS_NUM_THREADS=1``, an enclosing ``threadpoolctl.threadpool_limits(1)`` or a
Dask worker's share (``xpnet tune``) stay in force. A count the user gives
(``threads=``, ``--threads``) is used as given.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xpnet.backend._resolve import Backend

__all__ = [
    "THREADS_BY_SIZE",
    "available_threads",
    "choose_threads",
    "limit_threads",
    "product_size",
    "resolve_threads",
    "runs_on_host_threads",
    "using_threads",
]

#: Threads by size class: rows of (the largest product, in multiply-adds, the class holds;
#: threads), in increasing size; None: every thread the process allows. From
#: ``benchmarks/threads.py`` on a 2-core machine, quiet and with both cores kept busy
#: (``benchmarks/THREADS.md``), the choice whose worse case is the better: at the lab's
#: sizes (a 100 x 784 by 784 x 175 product: 13.7 million) a second thread made a step
#: 0.8 to 1.24 times as fast on the quiet machine and 1.5 to 5 times as slow on the busy
#: one; up to `best`'s 205 million, up to 1.5 times as fast quiet and 2 to 3 times as slow
#: busy; from 411 million up, 1.4 to 1.6 times as fast quiet and 1.1 to 1.5 times as slow
#: busy, and a test-set prediction (10,000 x 784 by 784 x 175) faster either way.
THREADS_BY_SIZE: tuple[tuple[float, int | None], ...] = (
    (4e8, 1),
    (math.inf, None),
)


def product_size(rows: int, inputs: int, outputs: int) -> int:
    """The multiply-adds of a ``(rows, inputs)`` by ``(inputs, outputs)`` matrix product:
    a training step's largest is its batch by the first layer's weights."""
    return rows * inputs * outputs


def choose_threads(size: int, available: int) -> int:
    """The threads :data:`THREADS_BY_SIZE` gives a product of ``size`` multiply-adds, at
    most ``available`` (and at least one)."""
    for bound, threads in THREADS_BY_SIZE:
        if size <= bound:
            return max(1, min(available, available if threads is None else threads))
    return max(1, available)  # pragma: no cover - the last bound is infinite


def runs_on_host_threads(backend: Backend) -> bool:
    """Whether ``backend``'s products run on the thread pools :func:`using_threads` sets:
    NumPy's BLAS (NumPy, array-api-strict and other NumPy-based namespaces) and torch on
    the CPU. JAX's XLA keeps its own pool, fixed at start (``XLA_FLAGS``); CuPy and GPU
    devices compute on the GPU."""
    if backend.name in ("jax", "cupy"):
        return False
    return backend.name != "torch" or getattr(backend.device, "type", None) == "cpu"


def available_threads(backend: Backend) -> int:
    """The threads the process allows ``backend``'s products now: torch's pool size for
    torch, else the largest BLAS pool's (the machine's CPUs where no BLAS is found)."""
    torch = sys.modules.get("torch")
    if backend.name == "torch" and torch is not None:
        return int(torch.get_num_threads())
    from threadpoolctl import threadpool_info

    pools = [int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(pools) if pools else os.cpu_count() or 1


def resolve_threads(threads: int | None, size: int, backend: Backend) -> int:
    """``threads`` (a positive integer, checked by the caller) as given, or, when None, the
    count chosen for a largest product of ``size`` multiply-adds on ``backend``
    (:func:`choose_threads`, at most :func:`available_threads`)."""
    if threads is not None:
        return threads
    return choose_threads(size, available_threads(backend))


@contextlib.contextmanager
def using_threads(threads: int, backend: Backend) -> Iterator[int]:
    """Run the body with ``threads`` threads in the BLAS and OpenMP pools (and torch's,
    for torch); restore every pool's size after, however the body ends.

    Yields
    ------
    int
        ``threads``.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch") if backend.name == "torch" else None
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def limit_threads(name: str, threads: int) -> None:
    """Let backend ``name`` use at most ``threads`` CPU threads in this process, where it
    has its own pool (torch's); the BLAS libraries read their variables at start. A Dask
    worker of ``xpnet tune`` calls it once, so that a run's :func:`available_threads` is
    the worker's share."""
    if name == "torch" and importlib.util.find_spec("torch") is not None:
        importlib.import_module("torch").set_num_threads(threads)
