"""A trial's epochs, told to the search through the Dask scheduler, and the search's answers.

A trial runs on a Dask worker that may share no file system and no database with the
search. It tells the search, through a queue on the scheduler, that it starts and each
epoch's validation accuracy, and waits for the answer: go on, stop there (pruned), or stop
(the search no longer wants it). The search, in a thread of its own, records each report
in the study, asks the pruner, answers, and records a heartbeat for each trial it runs.

A trial that starts twice had its first worker die under it (Dask runs the task again on
another worker): its second start is refused, and the search fails the trial and queues
its settings again (:func:`xpnet.tune._study.retry`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["GO", "PRUNE", "STOP", "Relay", "Reporter", "new_channel"]

GO, PRUNE, STOP = "go", "prune", "stop"
#: Seconds a trial waits for the search's answer before it takes the search for gone.
ANSWER_TIMEOUT = 30.0


def new_channel() -> str:
    """A name for a search's queue on the scheduler, unlike any other search's."""
    return f"xpnet-tune-{uuid.uuid4().hex}"


class Reporter:
    """A trial's side, on its worker: tells the search and waits for its answers.

    Parameters
    ----------
    channel : str
        The search's queue (:func:`new_channel`).
    number : int
        The trial's number in the study.
    """

    def __init__(self, channel: str, number: int):
        from distributed import Queue

        self._number = number
        self._requests = Queue(channel)
        self._answers = Queue(f"{channel}-{number}-{uuid.uuid4().hex}")

    def start(self) -> bool:
        """Whether the search wants this trial run (not when it ran before, elsewhere)."""
        return self._ask("start", 0, 0.0) == GO

    def epoch(self, step: int, value: float) -> str:
        """Report an epoch's validation accuracy; :data:`GO`, :data:`PRUNE` or :data:`STOP`."""
        return self._ask("epoch", step, value)

    def _ask(self, kind: str, step: int, value: float) -> str:
        try:
            self._requests.put([kind, self._number, step, float(value), self._answers.name])
            return str(self._answers.get(timeout=ANSWER_TIMEOUT))
        except Exception:  # no answer in time, or the scheduler is gone: so is the search
            return STOP

    def close(self) -> None:
        """Let the scheduler drop this trial's queue of answers."""
        for queue in (self._answers, self._requests):
            with contextlib.suppress(Exception):  # the scheduler is gone, and the queues with it
                queue.close()


class Relay:
    """The search's side: answers its running trials' reports and keeps their heartbeats.

    Use as a context manager around the trials' run; :meth:`add` each trial before it is
    submitted and :meth:`remove` it before it is told.

    Parameters
    ----------
    channel : str
        The name of the queue the trials report to (:attr:`TrialTask.channel`); any name
        no other search uses, such as :func:`new_channel`'s.
    client : distributed.Client
        The search's Dask client.
    study : optuna.Study
        The study the trials belong to; reports are recorded there and judged by its pruner.
    heartbeat : optuna.storages.RDBStorage or None
        The storage to record heartbeats in, every ``interval`` seconds; None: none.
    interval : float
    """

    def __init__(
        self, channel: str, client: Any, study: optuna.Study,
        heartbeat: optuna.storages.RDBStorage | None, interval: float,
    ) -> None:  # fmt: skip
        self.channel = channel
        self._client, self._study, self._heartbeat = client, study, heartbeat
        self._interval = interval
        self._lock = threading.Lock()
        self._trials: dict[int, tuple[optuna.trial.Trial, int | None]] = {}
        self._started: set[int] = set()
        self._superseded: list[int] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="xpnet-tune-relay", daemon=True)

    def __enter__(self) -> Relay:
        from distributed import Queue

        self._requests = Queue(self.channel, client=self._client)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:  # fmt: skip
        self._done.set()
        self._thread.join(timeout=10)  # a call to a scheduler that is gone may hang: a daemon
        with contextlib.suppress(Exception):  # the scheduler is gone, and the queue with it
            self._requests.close()

    def add(self, trial: optuna.trial.Trial) -> None:
        """Answer ``trial``'s reports from now on, and record its heartbeats."""
        trial_id = None
        if self._heartbeat is not None:
            study_id = self._heartbeat.get_study_id_from_name(self._study.study_name)
            trial_id = self._heartbeat.get_trial_id_from_study_id_trial_number(
                study_id, trial.number
            )
        with self._lock:
            self._trials[trial.number] = (trial, trial_id)
            self._beat(trial_id)

    def remove(self, number: int) -> None:
        """Stop answering trial ``number`` (it is told next): its reports get :data:`STOP`."""
        with self._lock:
            self._trials.pop(number, None)

    def superseded(self) -> list[int]:
        """The trials that started a second time since the last call: their first worker died."""
        with self._lock:
            found, self._superseded = self._superseded, []
        return found

    def _serve(self) -> None:
        due = time.monotonic() + self._interval
        while not self._done.is_set():
            if time.monotonic() >= due:
                with self._lock:
                    for _, trial_id in self._trials.values():
                        self._beat(trial_id)
                due = time.monotonic() + self._interval
            try:  # polled: a Dask queue's get that times out is logged as an error
                messages = self._requests.get(batch=True)
            except Exception:  # the scheduler is gone: the search will find out and stop
                messages = []
            for kind, number, step, value, reply in messages:
                self._reply(reply, self._answer(kind, number, step, value))
            if not messages:
                self._done.wait(0.1)

    def _reply(self, reply: str, answer: str) -> None:
        from distributed import Queue

        with contextlib.suppress(Exception):  # the trial or the scheduler went away meanwhile
            answers = Queue(reply, client=self._client)
            answers.put(answer)
            answers.close()

    def _answer(self, kind: str, number: int, step: int, value: float) -> str:
        import optuna

        with self._lock:
            if number not in self._trials:
                return STOP
            trial = self._trials[number][0]
            if kind == "start":
                if number in self._started:
                    self._superseded.append(number)
                    return STOP
                self._started.add(number)
                return GO
            try:
                trial.report(value, step)
                return PRUNE if trial.should_prune() else GO
            except optuna.exceptions.UpdateFinishedTrialError:  # another search ended it
                return STOP
            except Exception:  # the database failed this once: the trial trains on
                return GO

    def _beat(self, trial_id: int | None) -> None:
        if self._heartbeat is None or trial_id is None:
            return
        with contextlib.suppress(Exception):  # a busy database: the next beat will do
            self._heartbeat.record_heartbeat(trial_id)
