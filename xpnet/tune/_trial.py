"""One trial, as a Dask worker runs it: train with the sampled settings, report each epoch."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xpnet.backend import limit_threads
from xpnet.errors import TrainingDivergedError
from xpnet.pipeline import PreparedData, RunPlan, run_plan
from xpnet.training import ComputeSettings

__all__ = ["TrialTask", "make_pruner", "run_trial"]


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
    storage, study_name : str
        The study, for reporting each epoch's accuracy (and being pruned); a
        worker that cannot reach the storage trains without reporting.
    threads : int
        Threads each worker's array library may use.
    """

    plan: RunPlan
    devices: Sequence[Any]
    storage: str
    study_name: str
    threads: int


def run_trial(
    data: PreparedData, task: TrialTask, params: Mapping[str, Any], trial_id: int
) -> dict[str, Any]:
    """Train with ``params``; report the validation accuracy after each epoch.

    Returns
    -------
    dict
        ``state`` ("complete", "pruned" or "failed"), ``value`` (the final validation
        accuracy, for a complete trial), ``error`` (why it failed), ``seconds``,
        ``epochs`` (accuracies reported) and ``worker``.
    """
    import optuna

    start = time.perf_counter()
    worker, plan = _where(task)
    limit_threads(plan.settings.compute.name, task.threads)
    trial = _reachable_trial(task, trial_id)
    reported: list[float] = []

    def report_each_epoch(epoch: int, mean_loss: float, val_acc: float | None) -> None:
        assert val_acc is not None  # run() always validates
        reported.append(val_acc)
        if trial is not None:
            trial.report(val_acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch} at {val_acc:.4f}")

    base = {"state": "complete", "worker": worker, "epochs": reported}
    try:
        result = run_plan(plan.replace(**params), data=data, on_epoch=report_each_epoch)
    except optuna.TrialPruned as pruned:
        return {**base, "state": "pruned", "error": str(pruned), "seconds": _since(start)}
    except (TrainingDivergedError, TypeError, ValueError, RuntimeError) as err:
        return {**base, "state": "failed", "error": f"{type(err).__name__}: {err}",
                "seconds": _since(start)}  # fmt: skip
    return {**base, "value": result.val_acc, "seconds": _since(start)}


def make_pruner() -> Any:
    """Median pruning: after five finished trials, a trial below the median of their
    validation accuracies at the same epoch stops, judged from its second epoch on
    (epochs are reported as steps 1, 2, ...)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)


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


def _reachable_trial(task: TrialTask, trial_id: int) -> Any:
    """The Optuna trial, for reporting; None where this worker cannot reach the storage."""
    import optuna

    from xpnet.tune._storage import open_storage

    try:
        study = optuna.load_study(
            study_name=task.study_name, storage=open_storage(task.storage), pruner=make_pruner()
        )
        return optuna.trial.Trial(study, trial_id)
    except Exception:  # another machine without the file, a database it cannot reach
        return None


def _since(start: float) -> float:
    return time.perf_counter() - start
