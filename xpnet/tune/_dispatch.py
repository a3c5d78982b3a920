"""The trials on Dask: ask the study, submit, wait, tell, until the budget is spent."""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import Trial, TrialState

from xpnet._interrupt import deferred_interrupt
from xpnet.errors import ClusterLost, TuneInterrupted
from xpnet.pipeline import PreparedData
from xpnet.tune import _study
from xpnet.tune._cluster import TIMEOUTS, lost_to_cluster
from xpnet.tune._relay import Relay
from xpnet.tune._space import SearchSpace, distributions, fixed
from xpnet.tune._trial import (
    LOST,
    STOPPED,
    Outcome,
    TrialTask,
    failed,
    run_one_trial,
    run_trials_together,
)

if TYPE_CHECKING:
    from distributed import Client, Future

#: Called with the counts of :func:`counts` whenever a trial ends.
Progress = Callable[[dict[str, Any]], None]
_ENDS = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def run_trials(
    client: Client, study: optuna.Study, storage: optuna.storages.BaseStorage, spec: str,
    data: PreparedData, task: TrialTask, space: SearchSpace, trials: int | None,
    timeout: float | None, progress: Progress | None, wait_for_workers: float = 120.0,
    together: int = 1,
) -> None:  # fmt: skip
    """Ask, submit, wait, tell: until the study holds ``trials`` finished ones or time is up.

    Each Dask task trains one trial, or up to ``together`` trials asked at once, trained
    together (:func:`~xpnet.tune._trial.run_trials_together`).

    Finished trials of other searches of the study count too, and while they run this
    search waits for them (if their search died, their trials are queued again after the
    grace period, and run here). A trial whose worker dies, or that the cluster loses
    with all its workers, fails and is queued again with its settings once a worker is
    back; if none is within ``wait_for_workers`` seconds, or the scheduler is gone, the
    running trials are cancelled and :class:`~xpnet.errors.ClusterLost` raised. On
    Ctrl-C they are cancelled too, and :class:`~xpnet.errors.TuneInterrupted` raised.
    """
    from distributed import wait
    from distributed.client import FuturesCancelledError

    to_search, pinned = distributions(space), fixed(space)
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    capacity = max(sum(client.nthreads().values()), 1)
    shared = [client.scatter(data, broadcast=True)]  # the data reaches each worker once
    heartbeat = _study.heartbeats(storage)
    running: dict[Future[list[Outcome]], list[Trial]] = {}
    relay = Relay(task.channel, client, study, heartbeat, _study.HEARTBEAT_INTERVAL)
    # The budget of this search: the trials the study still needs (None: until the deadline).
    budget = None if trials is None else max(trials - _study.finished_count(study), 0)
    clock = _Clock(budget, capacity, deadline, together)

    def end(future: Future[list[Outcome]], ending: list[Outcome] | str) -> None:
        """Tell a task's trials how it ended: its outcomes, or why the cluster lost it."""
        ended = running.pop(future)
        for trial in ended:
            relay.remove(trial.number)
        if isinstance(ending, str):
            for trial in ended:
                _study.retry(study, trial, f"lost with the cluster: {ending}")
        else:
            for trial, outcome in zip(ended, ending, strict=True):
                _tell(study, trial, outcome)
            clock.ended(future, len(ended))
        if progress is not None:
            progress({**counts(study, _trial_count(running)),
                      "seconds_left": clock.seconds_left()})  # fmt: skip

    announced = False
    firsts: set[int] = set()  # the keys of the trials' checkpoints on the scheduler
    with relay, deferred_interrupt() as interrupted, _cancelled_at_exit(study, running), \
            _checkpoints_dropped_at_exit(client, task.channel, firsts):  # fmt: skip
        while not interrupted():
            _study.fail_stale(study)  # a dead search's trials: queued again
            while len(running) < capacity and _may_ask(study, trials, deadline):
                asked: list[Trial] = []
                while len(asked) < together and _may_ask(study, trials, deadline):
                    with _study.quiet():
                        trial = study.ask(to_search)
                    if trial.number not in _study.to_run(study, trials):  # another was quicker
                        _study.cancel(study, trial)
                        break
                    relay.add(trial)
                    asked.append(trial)
                if not asked:
                    break
                if together == 1:  # one trial a task, resumed from its checkpoint if lost
                    first = _study.first_of(study, asked[0])
                    firsts.add(asked[0].number if first is None else first)
                    future = client.submit(run_one_trial, shared[0], task,
                                           {**pinned, **asked[0].params}, asked[0].number, first,
                                           pure=False)  # fmt: skip
                else:
                    future = client.submit(run_trials_together, shared[0], task,
                                           [{**pinned, **t.params} for t in asked],
                                           [t.number for t in asked], pure=False)  # fmt: skip
                running[future] = asked
                clock.started(future)
            if not announced and running and progress is not None:
                progress({**counts(study, _trial_count(running)),
                          "starting": _trial_count(running), "budget": budget,
                          "timeout": timeout})  # fmt: skip
            announced = announced or bool(running)
            if not running:
                if not _others_running(study, trials, deadline, heartbeat is not None):
                    return
                time.sleep(1.0)
                continue
            try:  # a second at most: a timeout or Ctrl-C is noticed while trials run
                done = wait(list(running), return_when="FIRST_COMPLETED", timeout=1.0).done
            except TIMEOUTS:
                done = set()
            except FuturesCancelledError:  # the cluster gave a trial up
                done = {future for future in running if future.status != "pending"}
            endings = {future: _ending(future, len(running[future])) for future in done}
            lost = {future: why for future, why in endings.items() if isinstance(why, str)}
            for future in endings.keys() - lost.keys():
                end(future, endings[future])
            if lost:
                why = _regroup(client, shared, data, next(iter(lost.values())), wait_for_workers)
                if why is not None:
                    raise ClusterLost(why, _study.finished_count(study), spec)
                for future, reason in lost.items():
                    end(future, reason)
    raise TuneInterrupted(_study.finished_count(study), spec)


def _trial_count(running: dict[Future[list[Outcome]], list[Trial]]) -> int:
    """The trials the running tasks train."""
    return sum(len(trials) for trials in running.values())


def _ending(future: Future[list[Outcome]], count: int) -> list[Outcome] | str:
    """How a task that is no longer pending ended: its ``count`` trials' outcomes (each
    failed so where it raised on its worker, or killed its workers: KilledWorker), or why
    the cluster lost it, its result included (lost with its worker before it was
    gathered)."""
    if (lost := lost_to_cluster(future)) is not None:
        return lost
    try:
        return future.result()
    except Exception as err:
        if (lost := lost_to_cluster(future)) is not None:
            return f"its result was lost with its worker before it was gathered ({lost})"
        return [failed(err)] * count


class _Clock:
    """How long the trials of this search take, and what is left of it.

    ``seconds_left`` is None until a task has ended; then the trials not yet ended (of
    ``budget``), ``capacity`` tasks of ``together`` trials at a time, each task as long as
    those ended took on average, and no longer than the deadline allows (the running
    trials finish after it).
    """

    def __init__(self, budget: int | None, capacity: int, deadline: float, together: int) -> None:
        self.budget, self.capacity, self.deadline = budget, capacity, deadline
        self.together = together
        self.starts: dict[object, float] = {}
        self.durations: list[float] = []
        self.trials = 0  # the trials of the tasks ended

    def started(self, future: object) -> None:
        self.starts[future] = time.monotonic()

    def ended(self, future: object, trials: int) -> None:
        self.durations.append(time.monotonic() - self.starts.pop(future))
        self.trials += trials

    def seconds_left(self) -> float | None:
        if not self.durations:
            return None
        each = sum(self.durations) / len(self.durations)
        left = math.inf
        if self.budget is not None:
            rest = max(self.budget - self.trials, 0)
            left = math.ceil(rest / (self.capacity * self.together)) * each
        return min(left, max(self.deadline - time.monotonic(), 0.0) + each)


@contextlib.contextmanager
def _cancelled_at_exit(
    study: optuna.Study, running: dict[Future[list[Outcome]], list[Trial]]
) -> Iterator[None]:
    """Ctrl-C, the cluster lost: the trials still running are cancelled (not counted)."""
    try:
        yield
    finally:
        for future, trials in running.items():
            future.cancel()
            for trial in trials:
                _study.cancel(study, trial)


@contextlib.contextmanager
def _checkpoints_dropped_at_exit(client: Client, channel: str, firsts: set[int]) -> Iterator[None]:
    """When the search ends, the checkpoints its trials left on the scheduler (a lost
    trial's, kept for one that runs it again) are dropped: no scheduler memory kept."""
    from distributed import Variable

    try:
        yield
    finally:
        for first in firsts if client.status == "running" else ():  # gone: nothing kept
            with contextlib.suppress(Exception):  # deleted already, or the scheduler is gone
                Variable(f"{channel}-checkpoint-{first}", client=client).delete()


def _may_ask(study: optuna.Study, trials: int | None, deadline: float) -> bool:
    """Whether to ask for a trial: before the deadline, while the budget is not spent or
    trials are queued (to be run again)."""
    if time.monotonic() >= deadline:
        return False
    queued = any(row["state"] == "WAITING" for row in _study.rows(study))
    return trials is None or queued or len(_study.to_run(study, trials)) < trials


def _others_running(
    study: optuna.Study, trials: int | None, deadline: float, heartbeats: bool
) -> bool:
    """Whether to wait for trials that other searches run: the study needs them to hold
    ``trials``, and, with heartbeats, they end or go stale (then they are run here)."""
    if trials is None or not heartbeats or time.monotonic() >= deadline:
        return False
    states = [row["state"] for row in _study.rows(study)]
    return "RUNNING" in states and sum(state in _study.FINISHED for state in states) < trials


def _regroup(
    client: Client,
    shared: list[Future[PreparedData]],
    data: PreparedData,
    reason: str,
    wait_for_workers: float,
) -> str | None:
    """After the cluster lost trials: wait for a worker and send the data again.

    Returns why the cluster is gone for good, or None when the trials can run again.
    """
    if reason == "scheduler-connection-lost" or client.status not in ("running", "newly-created"):
        return f"the scheduler went away: {reason}"
    try:
        client.wait_for_workers(1, timeout=wait_for_workers)
        shared[0] = client.scatter(data, broadcast=True)
    except (OSError, *TIMEOUTS) as err:
        return f"no worker answered within {wait_for_workers:g} s: {type(err).__name__}: {err}"
    return None


def _tell(study: optuna.Study, trial: Trial, outcome: Outcome) -> None:
    """Record a trial's end: its value, its pruning, why it failed, or that it runs again."""
    if outcome["state"] == STOPPED:  # the search stopped it: not the trial's doing
        _study.cancel(study, trial)
    elif outcome["state"] == LOST:
        _study.retry(study, trial, "its worker died mid-trial")
    else:
        with contextlib.suppress(UpdateFinishedTrialError):  # another search ended it
            for key in ("seconds", "worker", "error", "resumed_at"):
                if key in outcome:
                    trial.set_user_attr(key, outcome[key])
            study.tell(trial, outcome.get("value"), state=_ENDS[outcome["state"]])


def counts(study: optuna.Study, running: int) -> dict[str, Any]:
    """The trials ``done``, ``running``, ``pruned`` and ``failed``, and the best so far
    (``best_value``, ``best_trial``)."""
    rows = _study.rows(study)
    states = Counter(row["state"] for row in rows)
    complete = [row for row in rows if row["state"] == "COMPLETE"]
    best = max(complete, key=lambda row: row["value"], default={})
    return {"done": states["COMPLETE"], "running": running, "pruned": states["PRUNED"],
            "failed": states["FAIL"], "best_value": best.get("value"),
            "best_trial": best.get("number")}  # fmt: skip
