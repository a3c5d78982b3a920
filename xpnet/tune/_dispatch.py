"""The trials on Dask: ask the study, submit, wait, tell, until the budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from xpnet._interrupt import deferred_interrupt
from xpnet.errors import ClusterLost, TuneInterrupted
from xpnet.pipeline import PreparedData
from xpnet.tune import _study
from xpnet.tune._cluster import lost_to_cluster, scheduler_lost
from xpnet.tune._relay import Relay
from xpnet.tune._space import SearchSpace, distributions, fixed
from xpnet.tune._trial import TrialTask, run_trial

__all__ = ["Progress", "counts", "run_trials"]

#: Called with the counts of :func:`counts` whenever a trial ends.
Progress = Callable[[dict[str, Any]], None]


def run_trials(
    client: Any, study: optuna.Study, storage: optuna.storages.BaseStorage, spec: str,
    data: PreparedData, task: TrialTask, space: SearchSpace, trials: int | None,
    timeout: float | None, progress: Progress | None, wait_for_workers: float = 120.0,
) -> None:  # fmt: skip
    """Ask, submit, wait, tell: until the study holds ``trials`` finished ones or time is up.

    Each trial is recorded as it ends; finished trials of other searches of the study
    count too, and while they run this search waits for them (their search may have died:
    after the grace period their trials are queued again, and run here). A trial whose
    worker dies, or that the cluster loses with all its workers, fails and is queued
    again with its settings once a worker is back. If none comes back within
    ``wait_for_workers`` seconds, or the scheduler is gone, the trials are cancelled.

    Raises
    ------
    xpnet.errors.TuneInterrupted
        On Ctrl-C (between steps: a trial asked for is always submitted and recorded);
        the running trials are cancelled, the finished ones kept.
    xpnet.errors.ClusterLost
        When the cluster is lost for good.
    """
    from distributed import wait
    from distributed.client import FuturesCancelledError

    to_search, pinned = distributions(space), fixed(space)
    deadline = None if timeout is None else time.monotonic() + timeout
    capacity = max(sum(client.nthreads().values()), 1)
    shared = [client.scatter(data, broadcast=True)]  # the data reaches each worker once
    heartbeat = _study.heartbeats(storage)
    running: dict[Any, Trial] = {}
    announced, stale_check = False, 0.0
    relay = Relay(task.channel, client, study, heartbeat, _study.HEARTBEAT_INTERVAL)

    def submit(trial: Trial) -> None:
        relay.add(trial)
        future = client.submit(run_trial, shared[0], task, {**pinned, **trial.params},
                               trial.number, pure=False)  # fmt: skip
        running[future] = trial

    def ended(trial: Trial, future: Any, lost: str | None = None) -> None:
        del running[future]
        relay.remove(trial.number)
        if lost is None:
            _tell(study, trial, future)
        else:
            future.cancel()
            _study.retry(study, trial, lost)
        if progress is not None:
            progress(counts(study, len(running)))

    with relay, deferred_interrupt() as interrupted:
        while not interrupted():
            if heartbeat is not None and time.monotonic() >= stale_check:
                _study.fail_stale(study)  # a dead search's trials: queued again
                stale_check = time.monotonic() + _study.HEARTBEAT_INTERVAL
            while len(running) < capacity and _may_ask(study, trials, deadline):
                with _study.quiet():
                    trial = study.ask(to_search)
                if trial.number not in _study.to_run(study, trials):  # another was quicker
                    _study.cancel(study, trial)
                    break
                submit(trial)
            if not announced and running and progress is not None:
                progress({**counts(study, len(running)), "starting": len(running)})
            announced = announced or bool(running)
            if not running:
                if not _others_running(study, trials, deadline, heartbeat is not None):
                    return
                time.sleep(1.0)
                continue
            try:  # a second at most: a timeout or Ctrl-C is noticed while trials run
                done = wait(list(running), return_when="FIRST_COMPLETED", timeout=1.0).done
            except TimeoutError:
                done = set()
            except FuturesCancelledError:  # the cluster gave a trial up
                done = {future for future in running if future.status != "pending"}
            for number in relay.superseded():
                for future, trial in list(running.items()):
                    if trial.number == number:
                        ended(trial, future, lost="its worker died mid-trial")
            lost = [(future, reason) for future in done if future in running
                    if (reason := lost_to_cluster(future)) is not None]  # fmt: skip
            for future in done - {future for future, _ in lost}:
                if future in running:
                    ended(running[future], future)
            if lost:
                why = _regroup(client, shared, data, lost[0][1], wait_for_workers)
                if why is not None:
                    _cancel_running(study, running, relay)
                    raise ClusterLost(why, _study.finished_count(study), spec)
                for future, reason in lost:
                    ended(running[future], future, lost=f"lost with the cluster: {reason}")
    _cancel_running(study, running, relay)
    raise TuneInterrupted(_study.finished_count(study), spec)


def _may_ask(study: optuna.Study, trials: int | None, deadline: float | None) -> bool:
    """Whether to ask for a trial: before the deadline, while the budget is not spent or
    trials are queued (to be run again)."""
    if deadline is not None and time.monotonic() >= deadline:
        return False
    if trials is None or study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return True
    return len(_study.to_run(study, trials)) < trials


def _others_running(
    study: optuna.Study, trials: int | None, deadline: float | None, heartbeats: bool
) -> bool:
    """Whether to wait for trials that other searches run: the study needs them to hold
    ``trials``, and, with heartbeats, they end or go stale (then they are run here)."""
    if trials is None or not heartbeats:
        return False
    if deadline is not None and time.monotonic() >= deadline:
        return False
    if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        return False
    return _study.finished_count(study) < trials


def _regroup(
    client: Any, shared: list[Any], data: PreparedData, reason: str, wait_for_workers: float
) -> str | None:
    """After the cluster lost trials: wait for a worker and send the data again.

    Returns why the cluster is gone for good, or None when the trials can run again.
    """
    if scheduler_lost(reason, client):
        return f"the scheduler went away: {reason}"
    try:
        client.wait_for_workers(1, timeout=wait_for_workers)
        shared[0] = client.scatter(data, broadcast=True)
    except (OSError, TimeoutError) as err:
        return f"no worker answered within {wait_for_workers:g} s: {type(err).__name__}: {err}"
    return None


def _cancel_running(study: optuna.Study, running: dict[Any, Trial], relay: Relay) -> None:
    for future, trial in running.items():
        future.cancel()
        relay.remove(trial.number)
        _study.cancel(study, trial)
    running.clear()


def _tell(study: optuna.Study, trial: Trial, future: Any) -> None:
    """Record a trial's end: its value, its pruning, or why it failed."""
    with _study.unless_finished():
        try:
            outcome = future.result()
        except Exception as err:  # it raised on its worker, or killed its workers (KilledWorker)
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            return
        if outcome["state"] == "stopped":  # the search stopped it: not the trial's doing
            _study.cancel(study, trial)
            return
        trial.set_user_attr("seconds", round(outcome["seconds"], 3))
        trial.set_user_attr("worker", outcome["worker"])
        if outcome["state"] == "complete":
            study.tell(trial, outcome["value"])
        elif outcome["state"] == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            trial.set_user_attr("error", outcome["error"][:500])
            study.tell(trial, state=TrialState.FAIL)


def counts(study: optuna.Study, running: int) -> dict[str, Any]:
    """The trials ``done``, ``running``, ``pruned`` and ``failed``, and the best so far
    (``best_value``, ``best_trial``)."""
    states = [row["state"] for row in _study.rows(study)]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.value or 0.0, default=None)
    return {
        "done": states.count("COMPLETE"),
        "running": running,
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
    }
