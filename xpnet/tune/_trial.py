"""One trial, as a Dask worker runs it: train with the sampled settings, report each epoch.

The worker needs xpnet and Dask only: the study stays with the search, which the trial
reaches through the scheduler (:mod:`xpnet.tune._relay`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xpnet.backend import limit_threads
from xpnet.errors import TrainingDivergedError
from xpnet.pipeline import PreparedData, RunPlan, run_plan
from xpnet.training import ComputeSettings
from xpnet.tune._relay import GO, PRUNE, Reporter

__all__ = ["TrialTask", "run_trial"]


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs to run trials besides the data: picklable, sent with each trial.

    Attributes
    ----------
    plan : RunPlan
        The run, checked in the main process, whose recipe fields the trial's parameters
        replace. Unpickled on a worker, its compute settings set the backend up there as
        they did in the main process (JAX's 64-bit mode included).
    devices : sequence
        GPU devices to spread workers over (one each), or empty: the plan's device.
    channel : str
        The search's queue on the scheduler, for reporting each epoch (and being pruned).
    threads : int
        Threads each worker's array library may use.
    """

    plan: RunPlan
    devices: Sequence[Any]
    channel: str
    threads: int


class _Pruned(Exception):
    """The search answered an epoch's report with: prune."""


class _Stopped(Exception):
    """The search answered an epoch's report with: stop."""


def run_trial(
    data: PreparedData, task: TrialTask, params: Mapping[str, Any], number: int
) -> dict[str, Any]:
    """Train with ``params``; report the validation accuracy after each epoch.

    Returns
    -------
    dict
        ``state`` ("complete", "pruned", "failed", or "stopped" where the search did not
        want it run or went away), ``value`` (the final validation accuracy, for a complete
        trial), ``error`` (why it failed or stopped), ``seconds``, ``epochs`` (accuracies
        reported) and ``worker``.
    """
    start = time.perf_counter()
    worker, plan = _where(task)
    reporter = Reporter(task.channel, number)
    reported: list[float] = []
    base = {"state": "complete", "worker": worker, "epochs": reported}
    try:
        if not reporter.start():
            return {**base, "state": "stopped", "error": "not started", "seconds": 0.0}
        limit_threads(plan.settings.compute.name, task.threads)

        def report_each_epoch(epoch: int, mean_loss: float, val_acc: float | None) -> None:
            assert val_acc is not None  # run() always validates
            reported.append(val_acc)
            answer = reporter.epoch(epoch, val_acc)
            if answer == PRUNE:
                raise _Pruned(f"pruned after epoch {epoch} at {val_acc:.4f}")
            if answer != GO:
                raise _Stopped(f"stopped after epoch {epoch}: the search no longer runs it")

        try:
            result = run_plan(plan.replace(**params), data=data, on_epoch=report_each_epoch)
        except _Pruned as pruned:
            return {**base, "state": "pruned", "error": str(pruned), "seconds": _since(start)}
        except _Stopped as stopped:
            return {**base, "state": "stopped", "error": str(stopped), "seconds": _since(start)}
        except (TrainingDivergedError, TypeError, ValueError, RuntimeError) as err:
            return {**base, "state": "failed", "error": f"{type(err).__name__}: {err}",
                    "seconds": _since(start)}  # fmt: skip
        return {**base, "value": result.val_acc, "seconds": _since(start)}
    finally:
        reporter.close()


def _where(task: TrialTask) -> tuple[str, RunPlan]:
    """This worker's name and the plan it trains: on its own GPU where there are several."""
    try:
        from distributed import get_worker

        name = str(get_worker().name)
    except (ImportError, ValueError):
        name = "local"
    if not task.devices:
        return name, task.plan
    index = int(name) if name.isdigit() else sum(map(ord, name))
    compute = task.plan.settings.compute
    on_device = ComputeSettings(compute.name, task.devices[index % len(task.devices)],
                                compute.dtype, enable_float64=compute.enable_float64)  # fmt: skip
    return name, task.plan.replace(compute=on_device)


def _since(start: float) -> float:
    return time.perf_counter() - start
