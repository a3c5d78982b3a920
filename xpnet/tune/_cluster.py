"""The Dask side of a search: reaching a scheduler or starting a local cluster, and telling
a trial lost to the cluster from a trial that failed on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client, Future, Worker

T = TypeVar("T")
#: A timeout, as Python and asyncio raise it (asyncio's is another class before 3.11).
TIMEOUTS = (TimeoutError, asyncio.TimeoutError)


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

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TIMEOUTS:
        why = "it accepted the connection but did not answer"
    except (OSError, ValueError, TypeError) as err:  # refused, unresolvable, not an address
        why = f"{type(err).__name__}: {err}"
    else:
        if isinstance(answer, dict) and answer.get("type") == "Scheduler":
            return
        why = f"what answers there is not a Dask scheduler ({str(answer)[:80]})"
    raise ValueError(f"cannot reach the Dask scheduler {address} within {timeout:g} s ({why})")


@contextlib.contextmanager
def connect(
    scheduler: str | None, workers: int, threads: int, connect_timeout: float
) -> Iterator[Client]:
    """A Dask client of the scheduler at ``scheduler``, or else of a local cluster of
    ``workers`` processes started here (and stopped at the end).

    A local worker's array library uses ``threads`` threads; the workers leave Ctrl-C to
    the search (which cancels their trials), and the dashboard takes a free port.

    Raises
    ------
    ValueError
        If ``scheduler`` does not answer within ``connect_timeout`` seconds.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler is None:
        environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"),
                   **{name: str(threads) for name in
                      ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}  # fmt: skip
        preload = [*dask.config.get("distributed.worker.preload"), __name__]  # dask_setup
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                              "distributed.worker.preload": preload}):  # fmt: skip
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
            )  # fmt: skip
        with cluster, Client(cluster) as client:
            yield client
        return
    probe(scheduler, connect_timeout)
    try:
        client = Client(scheduler, timeout=connect_timeout)
    except (OSError, *TIMEOUTS, ValueError) as err:
        raise ValueError(
            f"cannot reach the Dask scheduler {scheduler} within {connect_timeout:g} s "
            f"({type(err).__name__}: {err})"
        ) from None
    with client:
        yield client


def dask_setup(worker: Worker) -> None:
    """Run in each local worker process as it starts: Ctrl-C at the terminal reaches the
    whole process group, and it is the search's to handle, not each worker's."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def lost_to_cluster(future: Future[T]) -> str | None:
    """Why the cluster lost a trial's task, which has ended (its data, its workers or the
    scheduler went away), or None when the task ran and ended (well or not) on its own."""
    if future.status == "cancelled":
        try:
            future.result()
        except BaseException as err:  # a FutureCancelledError says why
            return str(getattr(err, "reason", None) or type(err).__name__)
    error = future.exception() if future.status == "error" else None
    if isinstance(error, OSError | asyncio.CancelledError):  # CommClosedError is an OSError
        return f"{type(error).__name__}: {error}"
    return None
