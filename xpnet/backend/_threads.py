"""The CPU threads a computation runs on: as many as suit the size of its matrix
products, set for its duration and restored after.

A BLAS library's second thread pays for itself only on a product large enough to split;
below that, on a machine whose cores are busy with other work (a browser, a test run,
another user), its threads spin waiting for each other and a training step takes several
times as long (``benchmarks/THREADS.md`` has the measurements). :data:`THREADS_BY_SIZE`
says, by the size of a computation's largest product, how many threads to use, and
:func:`choose_threads` reads it. :func:`using_threads` sets the thread pools of the BLAS
and OpenMP libraries (through ``threadpoolctl``, which finds OpenBLAS, MKL, BLIS and the
OpenMP runtimes loaded in the process) and torch's own pool, and restores them after. From
:data:`~xpnet.backend.SPLIT_FROM` to :data:`SPLIT_UP_TO` multiply-adds it keeps those pools
at one thread and runs each large product as two halves of its rows on two threads of
xpnet's own (:func:`xpnet.backend.row_halves`): nearly the BLAS's speed on an idle machine,
and no spinning on a busy one.

The choice depends on the size alone, never on how busy the machine is at the time, and from
:data:`~xpnet.backend.SPLIT_FROM` to :data:`SPLIT_UP_TO` one thread and two give the same
bits (the halves are the same calls wherever they run); elsewhere, a product's last bits
depend on how many BLAS threads share it. It never exceeds the threads the process allows
now (the BLAS pool's size, or torch's): ``OPENBLAS_NUM_THREADS=1``, an enclosing
``threadpoolctl.threadpool_limits(1)`` or a Dask worker's share (``xpnet tune``) stay in
force. A count the user gives (``threads=``, ``--threads``) is used as given; above two, in
the BLAS's own threads.
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

from xpnet.backend._products import SPLIT_FROM, row_halves

if TYPE_CHECKING:
    from xpnet.backend._resolve import Backend

__all__ = [
    "SPLIT_UP_TO",
    "THREADS_BY_SIZE",
    "available_threads",
    "choose_threads",
    "limit_threads",
    "resolve_threads",
    "runs_on_host_threads",
    "using_threads",
]

#: Threads by size class: rows of (the largest product, in multiply-adds, the class holds;
#: threads), in increasing size; None: every thread the process allows. From
#: ``benchmarks/threads.py`` on a 2-core machine, quiet and with both cores kept busy
#: (``benchmarks/THREADS.md``). Up to :data:`~xpnet.backend.SPLIT_FROM` (the lab's sizes: a
#: 100 x 784 by 784 x 175 product, 13.7 million), one thread: a second, the BLAS's or
#: xpnet's, made a step at most 1.4 times as fast on the quiet machine and 1.3 to 3.6 times
#: as slow on the busy one. Up to :data:`SPLIT_UP_TO` (`best`'s 205 million), two threads,
#: each computing half of a large product's rows with a one-thread BLAS: 1.2 to 1.5 times
#: one thread's speed quiet, 0.61 to 1.25 busy (two runs), where the BLAS's two threads ran
#: 1.3 to 3.8 times as slow busy. From 411 million up, every thread, in the BLAS: 1.4 to 1.7
#: times as fast quiet and at most 1.5 times as slow busy, and a test-set prediction (10,000
#: x 784 by 784 x 175) faster either way.
THREADS_BY_SIZE: tuple[tuple[float, int | None], ...] = (
    (SPLIT_FROM, 1),
    (4e8, 2),
    (math.inf, None),
)

#: The largest product (multiply-adds) whose threads are xpnet's own, each running half of
#: the product's rows on a one-thread BLAS (:func:`xpnet.backend.row_halves`).
SPLIT_UP_TO = THREADS_BY_SIZE[1][0]


#: The libraries whose products xpnet computes in halves (on the CPU, torch): they compute
#: at once on the host, where another namespace may build a lazy graph (Dask, ONNX).
_EAGER_ON_HOST = ("numpy", "array_api_strict", "torch")


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
def using_threads(threads: int, backend: Backend, size: int) -> Iterator[int]:
    """Run the body with ``threads`` threads for products of up to ``size`` multiply-adds;
    restore every pool's size after, however the body ends.

    Above :data:`~xpnet.backend.SPLIT_FROM` and up to :data:`SPLIT_UP_TO`, on NumPy,
    array-api-strict or torch on the CPU (:func:`runs_on_host_threads`), with one or two
    threads: the BLAS, OpenMP and torch pools at one thread, and
    :func:`xpnet.backend.matmul` computing the halves of a large product's rows on
    ``threads`` threads (:func:`xpnet.backend.row_halves`). Otherwise those pools at
    ``threads`` threads, and whole products (inside another computation's halves too).

    Yields
    ------
    int
        ``threads``.
    """
    from threadpoolctl import threadpool_limits

    halves = (
        backend.name in _EAGER_ON_HOST
        and runs_on_host_threads(backend)
        and SPLIT_FROM < size <= SPLIT_UP_TO
        and threads <= 2
    )
    pools = 1 if halves else threads
    torch = sys.modules.get("torch") if backend.name == "torch" else None
    before = torch.get_num_threads() if torch is not None else None
    with (
        threadpool_limits(limits=pools),
        row_halves(threads if halves else None),
    ):
        if torch is not None:
            torch.set_num_threads(pools)
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
