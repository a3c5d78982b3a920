"""The search's side of the trials' reports: a thread that answers them, and keeps the
trials' heartbeats.

A trial on a Dask worker (:mod:`xpnet.tune._trial`) puts its start and each epoch's
validation accuracy in the search's queue on the scheduler and waits for the answer in a
queue of its own; the :class:`Relay` records each report in the study, asks the pruner,
and answers.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

from xpnet.tune._trial import GO, LOST, PRUNED, STOPPED, Answer

if TYPE_CHECKING:
    import optuna
    from distributed import Client
    from optuna.trial import Trial


class Relay:
    """The search's side, a context manager around the trials' run: a thread answers the
    reports of the trials :meth:`add`-ed, and records their heartbeats in ``heartbeat``
    (None: none) every ``interval`` seconds, until they are :meth:`remove`-d.

    Parameters
    ----------
    channel : str
        The queue the trials report to: a name no other search uses.
    client : distributed.Client
    study : optuna.Study
        The study the trials belong to; reports are recorded there and judged by its pruner.
    heartbeat : optuna.storages.RDBStorage or None
    interval : float
    """

    def __init__(
        self, channel: str, client: Client, study: optuna.Study,
        heartbeat: optuna.storages.RDBStorage | None, interval: float,
    ) -> None:  # fmt: skip
        from distributed import Queue

        self._requests = Queue(channel, client=client)
        self._client, self._study, self._heartbeat = client, study, heartbeat
        self._interval, self._done, self._lock = interval, threading.Event(), threading.Lock()
        self._trials: dict[int, tuple[Trial, int | None]] = {}
        # What a trial that starts again is answered (its first worker died): LOST, to be
        # run again, or PRUNED when it was pruned before (a task of trials together).
        self._again: dict[int, Answer] = {}
        self._thread = threading.Thread(target=self._serve, name="xpnet-tune-relay", daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)  # a call to a scheduler that is gone may hang: a daemon
        with contextlib.suppress(Exception):  # the scheduler is gone, and the queue with it
            self._requests.close()

    def add(self, trial: Trial) -> None:
        trial_id = None
        if self._heartbeat is not None:
            study_id = self._heartbeat.get_study_id_from_name(self._study.study_name)
            trial_id = self._heartbeat.get_trial_id_from_study_id_trial_number(
                study_id, trial.number
            )
        with self._lock:
            self._trials[trial.number] = (trial, trial_id)
        self._beat([trial_id])  # from now on: a trial without a heartbeat is never stale

    def remove(self, number: int) -> None:
        """Before the trial is told: its reports get STOPPED from now on."""
        with self._lock:
            self._trials.pop(number, None)

    def _serve(self) -> None:
        due = time.monotonic() + self._interval
        while not self._done.is_set():
            if time.monotonic() >= due:
                with self._lock:
                    trial_ids = [trial_id for _, trial_id in self._trials.values()]
                self._beat(trial_ids)
                due = time.monotonic() + self._interval
            try:  # polled: a Dask queue's get that times out is logged as an error
                messages = self._requests.get(batch=True)
            except Exception:  # the scheduler is gone: the search will find out and stop
                messages = []
            for number, step, value, reply in messages:
                self._reply(reply, self._answer(number, step, value))
            if not messages:
                self._done.wait(0.1)

    def _answer(self, number: int, step: int, value: float) -> Answer:
        from optuna.exceptions import UpdateFinishedTrialError

        with self._lock:
            if number not in self._trials:
                return STOPPED
            if step == 0:  # a start; a second one is a run again: its first worker died
                if number in self._again:
                    return self._again[number]
                self._again[number] = LOST
                return GO
            trial = self._trials[number][0]
            try:
                trial.report(value, step)
                if trial.should_prune():
                    self._again[number] = PRUNED
                    return PRUNED
                return GO
            except UpdateFinishedTrialError:  # another search ended it
                return STOPPED
            except Exception:  # the database failed this once: the trial trains on
                return GO

    def _reply(self, reply: str, answer: str) -> None:
        from distributed import Queue

        with contextlib.suppress(Exception):  # the trial or the scheduler went away meanwhile
            answers = Queue(reply, client=self._client)
            answers.put(answer)
            answers.close()

    def _beat(self, trial_ids: list[int | None]) -> None:
        for trial_id in trial_ids:
            if self._heartbeat is not None and trial_id is not None:
                with contextlib.suppress(Exception):  # a busy database: the next beat will do
                    self._heartbeat.record_heartbeat(trial_id)
