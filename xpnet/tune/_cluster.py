"""The Dask side of a search: reaching a scheduler, a local cluster, and telling a trial
lost to the cluster from a trial that failed on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

__all__ = ["connect", "dask_setup", "local_cluster", "lost_to_cluster", "probe", "scheduler_lost"]

#: Why Dask cancels a task whose trial did nothing wrong: its data or its scheduler went away.
_SCHEDULER_LOST = "scheduler-connection-lost"


def probe(address: str, timeout: float) -> None:
    """Check that a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Dask's own client waits without end on a server that accepts the connection and
    never answers; this asks it who it is, with a deadline.

    Raises
    ------
    ValueError
        If nothing answers in time, saying whether it refused or stayed silent.
    """
    from distributed.comm.core import connect

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> Any:
        return await asyncio.wait_for(identity(), timeout)

    try:
        answer = asyncio.run(bounded())
    except TimeoutError:
        why = "it accepted the connection but did not answer"
    except (OSError, ValueError, TypeError) as err:  # refused, unresolvable, not an address
        why = f"{type(err).__name__}: {err}"
    else:
        if isinstance(answer, dict) and answer.get("type") == "Scheduler":
            return
        why = f"what answers there is not a Dask scheduler ({str(answer)[:80]})"
    raise ValueError(f"cannot reach the Dask scheduler {address} within {timeout:g} s ({why})")


@contextlib.contextmanager
def local_cluster(workers: int, threads: int) -> Iterator[Any]:
    """A LocalCluster of ``workers`` processes on this machine, closed at the end.

    Each worker's array library uses ``threads`` threads; the workers leave Ctrl-C to
    the search (which cancels their trials), and the dashboard takes a free port.
    """
    import dask
    from distributed import LocalCluster

    environment = {name: str(threads) for name in
                   ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}  # fmt: skip
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **environment}
    preload = [*dask.config.get("distributed.worker.preload"), __name__]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "distributed.worker.preload": preload}):  # fmt: skip
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
        )  # fmt: skip
    try:
        yield cluster
    finally:
        cluster.close()


@contextlib.contextmanager
def connect(
    scheduler: str | None, workers: int, threads: int, connect_timeout: float
) -> Iterator[Any]:
    """A Dask client: of an existing scheduler, or of a local cluster started (and stopped) here."""
    from distributed import Client

    if scheduler is None:
        with local_cluster(workers, threads) as cluster, Client(cluster) as client:
            yield client
        return
    probe(scheduler, connect_timeout)
    try:
        client = Client(scheduler, timeout=connect_timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise ValueError(
            f"cannot reach the Dask scheduler {scheduler} within {connect_timeout:g} s "
            f"({type(err).__name__}: {err})"
        ) from None
    try:
        yield client
    finally:
        client.close()


def dask_setup(worker: Any) -> None:
    """Run in each local worker process as it starts: Ctrl-C at the terminal reaches the
    whole process group, and it is the search's to handle, not each worker's."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def lost_to_cluster(future: Any) -> str | None:
    """Why the cluster lost a trial's task (its data, its workers or the scheduler went
    away), or None when the task ran and ended (well or not) on its own."""
    from distributed.client import FutureCancelledError

    if future.status == "cancelled":
        try:
            future.result(timeout=0)
        except FutureCancelledError as err:
            return _SCHEDULER_LOST if err.reason == _SCHEDULER_LOST else err.reason
        except BaseException as err:
            return type(err).__name__
        return "cancelled"
    if future.status == "error":
        error = future.exception(timeout=0)
        if isinstance(error, OSError | asyncio.CancelledError) or type(error).__name__ in (
            "CommClosedError",
        ):
            return f"{type(error).__name__}: {error}"
    return None


def scheduler_lost(reason: str | None, client: Any) -> bool:
    """Whether the scheduler itself is gone (nothing left to run trials on)."""
    return reason == _SCHEDULER_LOST or client.status not in ("running", "newly-created")
