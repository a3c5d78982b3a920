"""The study: where it is kept, opened or resumed, and its trials counted.

Optuna records every trial, by default in the SQLite database ``study.db`` of the output
directory through its ``RDBStorage``: each write a transaction, so a crash loses no
finished trial. The search records a heartbeat for each trial it runs; a running trial
without one for :data:`GRACE_PERIOD` seconds belonged to a search that died, and Optuna's
``fail_stale_trials`` fails it and queues its settings again
(``RetryHeartbeatStaleTrialCallback``). A journal file (``journal:PATH``) is kept when
asked for; it has no heartbeats.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
    fail_stale_trials,
)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from xpnet._wording import on_command_line, setting
from xpnet.tune._space import SearchSpace, differences, distributions

#: Seconds between two heartbeats of a running trial (the search records them).
HEARTBEAT_INTERVAL = 5
#: Seconds without a heartbeat after which a running trial's search is taken for dead.
GRACE_PERIOD = 20
#: Times a trial lost through no fault of its own is queued again with its settings.
MAX_RETRIES = 3
#: The states (as :func:`rows` names them) of the trials that count towards those asked for.
FINISHED = ("COMPLETE", "PRUNED", "FAIL")
_RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Optuna's experimental parts (heartbeats, retries) without a warning at each use, nor
    the one at each ``ask`` that heartbeats are for ``optimize`` (the search records them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed", UserWarning)
        yield


def storage_spec(storage: str | os.PathLike[str] | None, output_dir: Path) -> str:
    """The storage as a URL: None is ``study.db`` in ``output_dir``, a plain path an SQLite
    file, ``journal:PATH`` an Optuna journal, ``postgresql://...`` a database server.

    Raises
    ------
    ValueError
        For a URL of a kind Optuna cannot store in.
    """
    text = os.fspath(output_dir / "study.db" if storage is None else storage)
    scheme, colon, rest = text.partition(":")
    if not colon or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return f"sqlite:///{Path(text).resolve()}"
    if scheme == "journal":
        return f"journal:{Path(rest).resolve()}"
    if scheme.split("+", 1)[0] in _RDB_SCHEMES and rest.startswith("//"):
        return text
    raise ValueError(
        f"storage {text!r} is neither a file path nor a database URL (study.db, "
        "journal:study.log, postgresql://user@host/db, mysql://user@host/db)"
    )


def open_storage(spec: str, create: bool = False) -> BaseStorage:
    """The Optuna storage for a :func:`storage_spec` URL, with heartbeats where it has them;
    ``create`` makes a missing file (and its directory).

    Raises
    ------
    FileNotFoundError
        For a file that is not there, unless ``create``.
    ValueError
        If the storage cannot be opened or is not a study storage; the message says why.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the search tells of its trials
    file = spec.removeprefix("journal:").removeprefix("sqlite:///")
    path = Path(file) if file not in (spec, ":memory:") else None  # None: a database server
    if path is not None and not create and not path.exists():
        raise FileNotFoundError(f"storage {path} does not exist")
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if spec.startswith("journal:"):
            return JournalStorage(JournalFileBackend(file))
        with quiet():
            return RDBStorage(
                spec,
                # A file that is there already must hold Optuna's tables: none are added.
                skip_table_creation=path is not None and path.is_file() and path.stat().st_size > 0,
                # SQLite: wait for a concurrent search's write rather than fail at once.
                engine_kwargs={"connect_args": {"timeout": 60}} if path is not None else None,
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRIES),
            )
    except Exception as err:  # Optuna, SQLAlchemy and the file system raise many kinds
        raise _not_a_study(spec, err) from None


def _not_a_study(spec: str, err: Exception) -> ValueError:
    return ValueError(
        f"{spec} is not a study storage Optuna can use ({type(err).__name__}: {err}); "
        f"choose another {setting('storage')} or {setting('output_dir')}"
    )


def _elsewhere() -> str:
    """The settings that start a new search beside an old one, as the caller names them."""
    return f"{setting('study_name')} (or {setting('output_dir')})"


def heartbeats(storage: BaseStorage) -> RDBStorage | None:
    """The storage, where it keeps heartbeats (a database); None for a journal."""
    return storage if isinstance(storage, RDBStorage) and storage.get_heartbeat_interval() else None


def open_study(
    storage: BaseStorage, spec: str, name: str, search: Mapping[str, Any], seed: int,
    space: SearchSpace, write: bool = True,
) -> optuna.Study | None:  # fmt: skip
    """The study ``name``: resumed when it is the same search, else created.

    ``search`` is what identifies the search (:func:`~xpnet.tune._space.identity`):
    its space and fixed settings, the seed among them; a study records it, and one
    that records another is refused, the differences named. A study resumed is
    checked trial by trial against ``space`` before anything is written; then the
    trials a dead search left running are failed and queued again.
    ``write=False`` only reads and checks it, and gives None where it is not there yet.
    Trials below the median of five finished ones at the same epoch are pruned, from the
    second epoch on (epochs are steps 1, 2, ...).

    Raises
    ------
    ValueError
        For a storage that holds no study Optuna can read, a study of another search,
        or trials that searching ``space`` cannot give.
    """
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    try:
        try:  # loading first: a study that exists is read, never written to, until it matches
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                      pruner=pruner)  # fmt: skip
        except KeyError:
            if not write:
                return None
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                        sampler=sampler, pruner=pruner)  # fmt: skip
    except Exception as err:  # a file or database that is not a study store
        raise _not_a_study(spec, err) from None
    recorded = study.user_attrs.get("xpnet_search")
    if recorded is None and study.trials:
        raise ValueError(
            f"study {name!r} in {spec} was not made by xpnet tune; use another "
            f"{setting('study_name')}"
        )
    if recorded is not None and recorded != search:
        changed = differences(recorded, search) if isinstance(recorded, dict) else []
        raise ValueError(
            f"study {name!r} in {spec} searched another space or settings"
            + (f" ({'; '.join(changed)})" if changed else "")
            + f": give the same {'options' if on_command_line() else 'arguments'} to resume "
            f"it, or another {_elsewhere()} to start a new search"
        )
    searched = distributions(space)
    for trial in study.get_trials(deepcopy=False):
        if (wrong := _impossible(trial, searched)) is not None:
            raise ValueError(
                f"study {name!r} in {spec}: trial {trial.number} has {wrong}, which searching "
                "this space cannot give; the storage was written by something else. Give "
                f"another {_elsewhere()} to start a new search"
            )
    if write:
        study.set_user_attr("xpnet_search", dict(search))
        fail_stale(study)
    return study


def _impossible(trial: FrozenTrial, searched: dict[str, BaseDistribution]) -> str | None:
    """What in a trial searching ``searched`` cannot give, if anything."""
    for name, value in trial.params.items():
        if name not in searched:
            return f"{name}={value!r}, a knob this search does not turn"
        if not _inside(searched[name], value):
            return f"{name}={value!r}, outside the search space"
    if trial.state == TrialState.COMPLETE:
        if missing := sorted(set(searched) - set(trial.params)):
            return f"no value for {', '.join(missing)}"
        if not isinstance(trial.value, int | float) or not 0 <= trial.value <= 1:
            return f"a validation accuracy of {trial.value!r}"
    return None


def _inside(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        return value in distribution.choices
    assert isinstance(distribution, IntDistribution | FloatDistribution)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and distribution.low <= value <= distribution.high


def fail_stale(study: optuna.Study) -> None:
    """Fail the running trials whose search stopped beating, and queue them again."""
    with quiet():
        fail_stale_trials(study)


def cancel(study: optuna.Study, trial: Trial) -> None:
    """End a trial the search stopped (Ctrl-C, one too many, the cluster gone): not counted,
    not run again; left as it is where another search ended it (taking it for dead)."""
    with contextlib.suppress(UpdateFinishedTrialError):
        trial.set_user_attr("cancelled", True)
        study.tell(trial, state=TrialState.FAIL)


def retry(study: optuna.Study, trial: Trial, reason: str) -> None:
    """Fail a trial lost through no fault of its own (its worker died) and queue its
    settings again, as Optuna does for a trial whose heartbeat stopped: up to
    :data:`MAX_RETRIES` times, then it stays failed."""
    with contextlib.suppress(UpdateFinishedTrialError), quiet():
        trial.set_user_attr("lost", [trial.number, reason[:500]])
        failed = study.tell(trial, state=TrialState.FAIL)
        RetryHeartbeatStaleTrialCallback(MAX_RETRIES)(study, failed)


def first_of(study: optuna.Study, trial: Trial) -> int | None:
    """The number of the first trial of ``trial``'s settings when it runs them again after
    a lost one (:func:`retry`), else None."""
    frozen = [t for t in study.get_trials(deepcopy=False) if t.number == trial.number]
    with quiet():
        history = RetryHeartbeatStaleTrialCallback.retry_history(frozen[0]) if frozen else []
    return history[0] if history else None


def rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial as a row of ``trials.csv``: ``number``, ``state``, ``value``, ``seconds``,
    ``worker``, ``error``, ``resumed_at`` (the iteration a trial run again after a lost one
    went on from) and the settings.

    ``state`` is Optuna's, but CANCELLED for a trial the search stopped and RETRIED for one
    lost through no fault of its own and run again (Optuna's FAIL, for both).
    """
    trials = study.get_trials(deepcopy=False)
    with quiet():
        histories = [(t.number, RetryHeartbeatStaleTrialCallback.retry_history(t)) for t in trials]
    again = {history[-1]: number for number, history in histories if history}
    found = []
    for t in trials:
        state, error = t.state.name, t.user_attrs.get("error", "")
        lost = t.user_attrs.get("lost")  # a retry carries its first run's attributes
        why = lost[1] if isinstance(lost, list) and lost[0] == t.number else None
        if t.user_attrs.get("cancelled"):
            state = "CANCELLED"
        elif t.number in again:
            why = why or "its search stopped (no heartbeat)"
            state, error = "RETRIED", f"{why}; run again as trial {again[t.number]}"
        elif t.state == TrialState.FAIL and why is not None:
            error = f"lost {MAX_RETRIES + 1} times, the last: {why}"
        found.append({"number": t.number, "state": state, "value": t.value,
                      "seconds": t.user_attrs.get("seconds"), "worker": t.user_attrs.get("worker"),
                      "error": error, "resumed_at": t.user_attrs.get("resumed_at"),
                      **t.params})  # fmt: skip
    return found


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards those asked for: finished, neither cancelled nor retried."""
    return sum(row["state"] in FINISHED for row in rows(study))


def to_run(study: optuna.Study, trials: int | None) -> list[int]:
    """The numbers of the trials that fill ``trials``: counted, running or queued, first
    first. A trial two searches asked for at once whose number is not among them is one
    too many, and is cancelled."""
    numbers = [r["number"] for r in rows(study) if r["state"] in (*FINISHED, "RUNNING", "WAITING")]
    return numbers if trials is None else numbers[:trials]
