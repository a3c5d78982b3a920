"""A trial: trained on a Dask worker, its epochs reported to the search through the scheduler.

The worker needs xpnet and Dask only, and may share no file system or database with the
search. The trial (:func:`run_trial`) puts its start and each epoch's validation accuracy
in a queue on the scheduler and waits for the answer; a thread of the search
(:class:`~xpnet.tune._relay.Relay`) records each report in the study, asks the pruner and
answers. A trial that starts a second time had its first worker die under it (Dask runs
the task again elsewhere): it is told that it was lost, and is queued again (or that it
was pruned, where it was). After each epoch a trial alone puts its checkpoint
(:class:`xpnet.training.Checkpointing`) in a variable on the scheduler, under the number
of the first trial of its settings; the trial that runs them again after a lost one
resumes from there, and ends with the numbers of a trial never lost.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypedDict

from xpnet._typing import Device
from xpnet.backend import limit_threads
from xpnet.errors import TrainingDivergedError
from xpnet.pipeline import PreparedData, RunPlan, run_plan, run_plans_together
from xpnet.training import (
    CHECKPOINT_FILE,
    Checkpoint,
    ComputeSettings,
    group_key,
    read_checkpoint,
)

#: The search's answers: go on, or how the trial ends (pruned; stopped: the search no
#: longer runs it; lost: it ran before, on a worker that died).
Answer = Literal["go", "pruned", "stopped", "lost"]
GO: Final = "go"
PRUNED: Final = "pruned"
STOPPED: Final = "stopped"
LOST: Final = "lost"
_ANSWERS: dict[object, Answer] = {answer: answer for answer in (GO, PRUNED, STOPPED, LOST)}
#: Seconds a trial waits for the search's answer before it takes the search for gone.
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs to run trials besides the data: picklable, sent with each trial.

    Attributes
    ----------
    plan : RunPlan
        The run, checked in the main process, whose recipe fields the trial's parameters
        replace; unpickled on a worker, it sets the backend up there as it did in the
        main process (JAX's 64-bit mode included).
    devices : sequence
        GPU devices to spread workers over (one each), or empty: the plan's device.
    channel : str
        The search's queue on the scheduler (:class:`~xpnet.tune._relay.Relay`).
    threads : int
        Threads each worker's array library may use.
    """

    plan: RunPlan
    devices: Sequence[Device]
    channel: str
    threads: int


class _Ending(TypedDict):
    state: Literal["complete", "failed"] | Answer


class Outcome(_Ending, total=False):
    """How a trial ended on its worker: ``state`` ("complete", with the validation accuracy
    as ``value``; "failed", with ``error``; or the search's answer that ended it), the
    ``seconds`` it took, its ``worker``, and, for a trial that went on from a lost one's
    checkpoint, the iteration it resumed at (``resumed_at``)."""

    value: float | None  # the validation accuracy (a trial always validates)
    error: str
    worker: str
    seconds: float
    resumed_at: int


def failed(err: BaseException | type[BaseException], message: str | None = None) -> Outcome:
    """The outcome of a trial that failed with ``err`` (or with an error of type ``err``
    and ``message``): its type and message, cut to 500 characters for ``trials.csv``."""
    kind, text = (err, message) if isinstance(err, type) else (type(err), str(err))
    return {"state": "failed", "error": f"{kind.__name__}: {text}"[:500]}


class _Stop(Exception):
    """The search's answer to an epoch's report was not GO."""


class _Reports(contextlib.AbstractContextManager["_Reports"]):
    """The trials' side of the :class:`~xpnet.tune._relay.Relay`, on a worker: a report of
    trial ``number`` put in the search's queue, and the answer awaited in a queue of that
    trial's own; the queues are closed at the end (the scheduler drops a queue no one
    holds)."""

    def __init__(self, channel: str, numbers: Sequence[int]) -> None:
        from distributed import Queue

        self._requests = Queue(channel)
        self._answers = {n: Queue(f"{channel}-{n}-{uuid.uuid4().hex}") for n in numbers}

    def ask(self, number: int, step: int, value: float = 0.0) -> Answer:
        """The search's answer to trial ``number``'s report of ``value`` at epoch ``step``
        (0: its start); STOPPED where none comes in time, or the scheduler is gone."""
        answers = self._answers[number]
        try:
            self._requests.put([number, step, float(value), answers.name])
            return _ANSWERS.get(answers.get(timeout=ANSWER_TIMEOUT), STOPPED)
        except Exception:  # no answer in time, or the scheduler is gone: so is the search
            return STOPPED

    def __exit__(self, *exc_info: object) -> None:
        for queue in (*self._answers.values(), self._requests):
            with contextlib.suppress(Exception):  # the scheduler is gone, and them with it
                queue.close()


def run_trial(
    data: PreparedData, task: TrialTask, params: Mapping[str, Any], number: int,
    first: int | None = None,
) -> Outcome:  # fmt: skip
    """Train trial ``number`` with ``params``, reporting each epoch's validation accuracy.

    ``first`` is the number of the first trial of these settings, when this one runs them
    again after it was lost: it resumes from that run's last checkpoint, if there is one.

    Returns
    -------
    Outcome
        How it ended, with the ``seconds`` it took and its ``worker``.
    """
    from distributed import Variable, get_worker

    start, worker = time.perf_counter(), str(get_worker().name)
    saved = Variable(f"{task.channel}-checkpoint-{number if first is None else first}")
    outcome: Outcome
    with (
        _Reports(task.channel, [number]) as reports,
        tempfile.TemporaryDirectory(prefix="xpnet-trial-") as scratch,
    ):
        checkpoint = Path(scratch) / CHECKPOINT_FILE

        def report_each_epoch(epoch: int, mean_loss: float, val_acc: float | None) -> None:
            assert val_acc is not None  # run() always validates
            with contextlib.suppress(OSError):  # not written (a full disk): the last stays
                saved.set(checkpoint.read_bytes())
            if (answer := reports.ask(number, epoch, val_acc)) != GO:
                raise _Stop(answer)

        trained = False
        try:
            if (answer := reports.ask(number, 0)) != GO:  # step 0: the start
                outcome = {"state": answer}
            else:
                plan = _on_device(task, worker).replace(**params)
                limit_threads(plan.settings.compute.name, task.threads)
                trained = True  # from here on, the variable is this run's to delete
                resume = _lost_run(saved, checkpoint, plan, data) if first is not None else None
                result = run_plan(plan, data=data, on_epoch=report_each_epoch,
                                  checkpoint=checkpoint, resume=resume)  # fmt: skip
                outcome = {"state": "complete", "value": result.val_acc}
                if resume is not None:
                    outcome["resumed_at"] = resume.iterations
        except _Stop as stop:
            outcome = {"state": stop.args[0]}
        except (TrainingDivergedError, TypeError, ValueError, RuntimeError, OSError) as err:
            outcome = failed(err)  # OSError: the trial's own (a full disk), not the cluster's
        finally:
            if trained:  # its run is over: a lost one's checkpoint stays for the next run
                with contextlib.suppress(Exception):
                    saved.delete()
    outcome["worker"], outcome["seconds"] = worker, round(time.perf_counter() - start, 3)
    return outcome


def run_one_trial(
    data: PreparedData, task: TrialTask, params: Mapping[str, Any], number: int,
    first: int | None,
) -> list[Outcome]:  # fmt: skip
    """:func:`run_trial`, its outcome as a task's list (a worker imports this module, which
    needs no Optuna)."""
    return [run_trial(data, task, params, number, first)]


def run_trials_together(
    data: PreparedData, task: TrialTask, params: Sequence[Mapping[str, Any]],
    numbers: Sequence[int],
) -> list[Outcome]:  # fmt: skip
    """Train trials ``numbers`` with ``params`` together (:func:`xpnet.training.fit_many`),
    each reporting its own epochs: a trial the search prunes or stops stops alone. Trials
    that cannot share one program (another batch size) train in groups one after another;
    a group that raises fails its own trials only.

    A trial lost with its worker runs again from its start (no checkpoint is kept for
    trials trained together).

    Returns
    -------
    list of Outcome
        How each ended, in the order of ``numbers``, each with the ``seconds`` the task
        took and its ``worker``.
    """
    from distributed import get_worker

    start, worker = time.perf_counter(), str(get_worker().name)
    outcomes: dict[int, Outcome] = {}
    going: list[tuple[int, RunPlan]] = []
    with _Reports(task.channel, numbers) as reports:
        for number, trial_params in zip(numbers, params, strict=True):
            if (answer := reports.ask(number, 0)) != GO:  # step 0: the start
                outcomes[number] = {"state": answer}
                continue
            try:
                going.append((number, _on_device(task, worker).replace(**trial_params)))
            except (TypeError, ValueError) as err:
                outcomes[number] = failed(err)

        groups: dict[tuple[object, ...], list[tuple[int, RunPlan]]] = {}
        for number, plan in going:  # fit_many's groups, one after another
            groups.setdefault(group_key(plan.settings), []).append((number, plan))
        for group in groups.values():
            limit_threads(group[0][1].settings.compute.name, task.threads)
            _train_group(group, data, reports, outcomes)
    seconds = round(time.perf_counter() - start, 3)
    for outcome in outcomes.values():
        outcome["worker"], outcome["seconds"] = worker, seconds
    return [outcomes[number] for number in numbers]


def _train_group(
    group: list[tuple[int, RunPlan]], data: PreparedData, reports: _Reports,
    outcomes: dict[int, Outcome],
) -> None:  # fmt: skip
    """Train trials that share a program (numbers and plans) together, each reporting its
    epochs, and put how each ended in ``outcomes``. An error fails those of the group's
    trials the search has not ended, and no other group's."""

    def report_each_epoch(epoch: int, val_accs: list[float | None]) -> list[int]:
        stop = []
        for index, ((number, _), value) in enumerate(zip(group, val_accs, strict=True)):
            if value is not None and (answer := reports.ask(number, epoch, value)) != GO:
                outcomes[number] = {"state": answer}
                stop.append(index)
        return stop

    try:
        results = run_plans_together([plan for _, plan in group], data,
                                     on_epoch=report_each_epoch)  # fmt: skip
    except Exception as err:  # MemoryError too: those the search ended keep their ends
        for number, _ in group:
            outcomes.setdefault(number, failed(err))
        return
    for (number, _), result in zip(group, results, strict=True):
        if number in outcomes:  # pruned or stopped
            continue
        record = result.net.last_training or {}
        if record.get("diverged_at") is not None:  # as a trial alone says it
            outcomes[number] = failed(TrainingDivergedError, record["divergence"])
        else:
            outcomes[number] = {"state": "complete", "value": result.val_acc}


def _lost_run(saved: Any, checkpoint: Path, plan: RunPlan, data: PreparedData) -> Checkpoint | None:
    """The last checkpoint a lost run of these settings put on the scheduler, written to
    ``checkpoint`` and read; None where it put none (it died in its first epoch), or one
    this run cannot go on from (another GPU's: this worker's device differs), which then
    starts over."""
    # Any: a distributed.Variable, whose package the type checker need not follow here.
    try:
        content = saved.get(timeout=1)
    except Exception:  # no such variable: nothing was saved
        return None
    checkpoint.write_bytes(content)
    try:
        resume = read_checkpoint(checkpoint)
        resume.check_resumable(plan.settings, data.X_train.shape[0])
    except ValueError:  # ModelFileError included
        return None
    return resume


def _on_device(task: TrialTask, worker: str) -> RunPlan:
    """The plan, on the worker's own GPU where there are several."""
    if not task.devices:
        return task.plan
    index = int(worker) if worker.isdigit() else sum(map(ord, worker))
    compute = task.plan.settings.compute
    on_device = ComputeSettings(compute.name, task.devices[index % len(task.devices)],
                                compute.dtype, enable_float64=compute.enable_float64)  # fmt: skip
    return task.plan.replace(compute=on_device)
