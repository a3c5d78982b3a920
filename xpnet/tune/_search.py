"""The search: Optuna asks, Dask workers train, Optuna is told; every trial recorded as it ends."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from xpnet import _checks
from xpnet._interrupt import deferred_interrupt
from xpnet._typing import DType
from xpnet.backend import Backend, gpu_devices
from xpnet.errors import ClusterLost, TrainingInterrupted, TuneInterrupted
from xpnet.pipeline import (
    PreparedData,
    RunPlan,
    RunResult,
    check_output_dir,
    plan_run,
    prepare_data,
    run_plan,
)
from xpnet.recipes import Recipe
from xpnet.tune._cluster import local_cluster, lost_to_cluster, probe, scheduler_lost
from xpnet.tune._space import (
    Choices,
    Range,
    SearchSpace,
    check_space,
    distributions,
    fingerprint,
    fixed,
    searched_space,
)
from xpnet.tune._storage import open_storage, storage_spec
from xpnet.tune._trial import TrialTask, make_pruner, run_trial

__all__ = ["TuneResult", "tune"]

#: Trials a study counts as finished: done, pruned, or failed for a reason of their own.
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")
#: Times a trial may be lost with the cluster and run again; lost once more, it failed.
_MAX_LOSSES = 3


@dataclass
class TuneResult:
    """What a search found.

    Attributes
    ----------
    best_params : dict
        The best trial's settings (the searched knobs and the fixed ones).
    best_value : float
        Its validation accuracy.
    best_trial : int
        Its number in the study.
    trials : list of dict
        Every trial of the study: ``number``, ``state``, ``value``, ``seconds``,
        ``error`` and the settings.
    command : str
        The ``xpnet train`` command line that trains the best settings.
    best_run : RunResult or None
        The best settings retrained and measured on the test set (None without retraining).
    storage : str
        Where the study is recorded; running the same search again resumes it.
    written : list of Path
        The files written.
    retrained : dict or None
        Where ``best/`` already held the best trial retrained by an earlier run (so
        it was not retrained again): its ``trial``, ``val_acc`` and ``test_acc``.
    """

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trials: list[dict[str, Any]] = field(repr=False)
    command: str
    best_run: RunResult | None = field(repr=False)
    storage: str
    written: list[Path] = field(default_factory=list)
    retrained: dict[str, Any] | None = None


def tune(
    *,
    trials: int | None = 20,
    timeout: float | None = None,
    space: Mapping[str, Range | Choices] | None = None,
    recipe: str = "lab",
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    backend: str | ModuleType | Backend = "numpy",
    device: Any = None,
    dtype: DType = "float64",
    seed: int = 0,
    train_size: int | None = None,
    storage: str | os.PathLike[str] | None = None,
    study_name: str = "xpnet-tune",
    output_dir: str | os.PathLike[str] = "xpnet-tune",
    workers: int | None = None,
    scheduler: str | None = None,
    connect_timeout: float = 10.0,
    retrain: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Search the lab's hyperparameters with Optuna, training the trials on Dask workers.

    Parameters
    ----------
    trials : int, optional
        Finished trials the study should hold; a study that already holds some (the
        same command run again) runs only the rest. None: until ``timeout``.
    timeout : float, optional
        Seconds after which no new trial starts; running ones finish.
    space : dict, optional
        Knobs to search, each a :class:`Range` or :class:`Choices`, replacing those of
        :func:`default_space` around the recipe (``low == high`` fixes a knob).
    recipe : str
        The recipe the trials start from: a name of :data:`xpnet.recipes.RECIPES`.
    dataset, data_dir, backend, device, dtype, seed
        As for :func:`xpnet.pipeline.run`; the seed also seeds the sampler. float64 on
        JAX switches on its 64-bit mode, here and in the workers.
    train_size : int, optional
        Train on the first ``train_size`` training images only, for a quick search.
    storage : str or path, optional
        An Optuna storage: a journal file path, ``sqlite:///study.db``, or a
        PostgreSQL/MySQL URL shared by many machines. Default: ``study.log`` in
        ``output_dir``.
    study_name : str
    output_dir : path
        Where ``trials.csv``, the plots and the retrained best model (``best/``) go.
    workers : int, optional
        Worker processes of the local Dask cluster: one per GPU where the backend
        sees several, else the number of cores.
    scheduler : str, optional
        The address of an existing Dask scheduler (``tcp://host:8786``); the trials
        run on its workers instead of a local cluster.
    connect_timeout : float
        Seconds to wait for ``scheduler``.
    retrain : bool
        Retrain the best settings and measure them on the test set, into ``best/``
        (unless ``best/`` already holds that trial retrained by an earlier run).
    progress : callable, optional
        Called with a dict of counts (``done``, ``running``, ``pruned``, ``failed``)
        and the best so far (``best_value``, ``best_trial``) whenever a trial ends;
        once, with ``starting`` (the trials started) added, when the first trials of
        this run start; and with ``{"retraining": trial}`` when retraining begins.

    Returns
    -------
    TuneResult

    Raises
    ------
    TypeError, ValueError
        For bad settings or ranges (every knob's ends are checked as training would
        check them), a storage that cannot be opened or holds another search, or a
        scheduler that cannot be reached: before any trial runs, and for settings
        before anything is started or written.
    ImportError, RuntimeError
        For a backend that is not installed, or a GPU this machine lacks.
    xpnet.errors.TuneInterrupted
        On Ctrl-C: running trials are cancelled, finished ones stay in the storage
        (during the retraining: the model trained so far is saved in ``best/``).
    xpnet.errors.ClusterLost
        When the scheduler goes away, or no worker comes back after all were lost:
        the trials it took are cancelled (not counted), finished ones kept.
    """
    trials, timeout, train_size = _checked_budget(trials, timeout, train_size)
    _checks.flag("retrain", retrain)
    _checks.optional_callable("progress", progress)
    _checks.real("connect_timeout", connect_timeout, low=0.0, low_open=True)
    for name, text in (("study_name", study_name), ("scheduler", scheduler)):
        if not isinstance(text, str) and not (name == "scheduler" and text is None):
            raise TypeError(f"{name} must be a string, got {text!r}")
    # Every setting and every knob's ends are checked here, before anything starts. On
    # JAX, float64 needs its 64-bit mode, in this process and (through the pickled
    # settings) in every worker.
    plan = plan_run(recipe, dataset=dataset, backend=backend, device=device, dtype=dtype,
                    seed=seed, enable_float64=dtype == "float64")  # fmt: skip
    searched = searched_space(plan.recipe, space)
    check_space(searched, plan)
    out = Path(output_dir)
    spec = storage_spec(storage, out)
    settings = {"recipe": recipe, "dataset": dataset, "backend": plan.settings.compute.name,
                "dtype": dtype, "train_size": train_size}  # fmt: skip

    devices = gpu_devices(plan.settings.compute.name) if device is None else []
    count = _worker_count(workers, devices)
    threads = max((os.cpu_count() or 1) // count, 1)
    task = TrialTask(plan, devices if len(devices) > 1 else [], spec, study_name, threads)
    space_id = fingerprint(searched, settings)
    data = None
    if _left_to_run(spec, study_name, space_id, searched, trials) == 0:  # nothing to start
        check_output_dir(out)
        study = _study(spec, study_name, space_id, seed, searched)
    else:  # nothing is written before the engines answer: the cluster, then the storage
        with _client(scheduler, count, threads, connect_timeout) as client:
            check_output_dir(out)
            study = _study(spec, study_name, space_id, seed, searched)
            data = _data(plan.recipe, dataset, data_dir, train_size)
            _run_trials(client, study, data, task, searched, trials, timeout, progress)

    rows = _rows(study)
    from xpnet.tune import _report

    written = _report.write(out, rows, searched)  # failed trials' reasons included
    best = study.best_trial if any(r["state"] == "COMPLETE" for r in rows) else None
    if best is None:
        raise ValueError(
            f"no trial of study {study_name!r} finished with a value; "
            f"{_failure_summary(rows)} (every trial is in {written[0]})"
        )
    best_params = {**fixed(searched), **best.params}
    command = train_command(recipe, best_params, dataset, plan.settings.compute.name, dtype, seed)
    best_run, retrained = None, _retrained(study, best.number, out)
    if retrain and retrained is None:
        data = data or _data(plan.recipe, dataset, data_dir, train_size)
        if progress is not None:
            progress({"retraining": best.number})
        best_run, saved = _retrain(study, spec, best.number, plan.replace(**best_params), data,
                                   out / "best")  # fmt: skip
        written += saved
    return TuneResult(best_params, float(best.value), best.number, rows, command, best_run,
                      spec, written, retrained)  # fmt: skip


def _checked_budget(
    trials: Any, timeout: Any, train_size: Any
) -> tuple[int | None, float | None, int | None]:
    """The budget as plain Python numbers (NumPy's integers accepted), checked."""
    if trials is None and timeout is None:
        raise ValueError("give a number of trials, a timeout, or both")
    if trials is not None:
        trials = _checks.positive_int("trials", trials)
    if timeout is not None:
        timeout = _checks.real("timeout", timeout, low=0.0, low_open=True)
    if train_size is not None:
        train_size = _checks.positive_int("train_size", train_size)
        if train_size < 2:
            raise ValueError(f"train_size must be an integer of at least 2, got {train_size!r}")
    return trials, timeout, train_size


def _failure_summary(rows: list[dict[str, Any]]) -> str:
    """Why the trials failed: each distinct reason once, with its count, most common first."""
    reasons: dict[str, int] = {}
    for row in rows:
        if row["state"] == "FAIL" and row.get("error"):
            reasons[row["error"]] = reasons.get(row["error"], 0) + 1
    if not reasons:
        return "none failed (they were pruned or cancelled)"
    ranked = sorted(reasons.items(), key=lambda item: -item[1])
    return "trials failed with: " + "; ".join(f"{reason} ({n}x)" for reason, n in ranked[:3])


def _worker_count(workers: int | None, devices: list[Any]) -> int:
    """Worker processes for a local cluster: ``workers``, else one per GPU, else per core."""
    if workers is None:
        return len(devices) if len(devices) > 1 else os.cpu_count() or 1
    return _checks.positive_int("workers", workers)


def _left_to_run(
    spec: str, name: str, space_id: str, space: SearchSpace, trials: int | None
) -> int | None:
    """How many trials a study that already exists still needs; None if unknown.

    Reads a journal file that is already there (and writes nothing), so that a search
    run again with nothing left to do starts no cluster.
    """
    if trials is None or not spec.startswith("journal:"):
        return None
    if not Path(spec[len("journal:") :]).is_file():
        return None
    import optuna

    storage = open_storage(spec, create=True)  # the file exists: this only sets a cut-off end aside
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except Exception:  # absent, or not a study: _study says what is wrong
        return None
    if study.user_attrs.get("xpnet_search") != space_id:
        return None
    _check_trials(study, space, spec)
    return max(trials - _finished_count(study) - len(_live_running(study)), 0)


def _study(spec: str, name: str, space_id: str, seed: int, space: SearchSpace) -> Any:
    """The study in ``spec``: created, or resumed when it searched the same space.

    A study resumed is checked trial by trial against ``space``, and trials left
    running by a search that is no longer alive are cancelled.
    """
    import optuna

    storage = open_storage(spec, create=True)
    engines = {"sampler": optuna.samplers.TPESampler(seed=seed), "pruner": make_pruner()}
    try:
        try:  # loading first: a study that exists is read, never written to, until it matches
            study = optuna.load_study(study_name=name, storage=storage, **engines)
        except KeyError:
            study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                        **engines)  # fmt: skip
    except Exception as err:  # a file or database that is not a study store
        raise ValueError(
            f"{spec} is not a study storage Optuna can use ({type(err).__name__}: {err}); "
            "choose another --storage or --output-dir"
        ) from None
    recorded = study.user_attrs.get("xpnet_search")
    if recorded is None and study.trials:
        raise ValueError(
            f"study {name!r} in {spec} was not made by xpnet tune; use another --study-name"
        )
    if recorded is not None and recorded != space_id:
        raise ValueError(
            f"study {name!r} in {spec} searched another space or settings; give another "
            "--study-name (or --output-dir) to start a new search, or the same options to resume"
        )
    _check_trials(study, space, spec)
    study.set_user_attr("xpnet_search", space_id)
    _cancel_orphans(study)
    return study


def _check_trials(study: Any, space: SearchSpace, spec: str) -> None:
    """Refuse a study whose trials could not have come from searching ``space``.

    Every trial's parameters must be knobs the space searches, each within its
    range or among its choices; a finished trial must have them all and a value that
    is an accuracy. Anything else was written by something other than this search.
    """
    searched = distributions(space)
    for trial in study.get_trials(deepcopy=False):
        wrong = _wrong_param(trial, searched)
        if wrong is None and trial.state.name == "COMPLETE":
            value = trial.value
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                wrong = f"a validation accuracy of {value!r}"
        if wrong is not None:
            raise ValueError(
                f"study {study.study_name!r} in {spec}: trial {trial.number} has {wrong}, which "
                "searching this space cannot give; the storage was written by something else. "
                "Give another --study-name (or --output-dir) to start a new search"
            )


def _wrong_param(trial: Any, searched: Mapping[str, Any]) -> str | None:
    for name, value in trial.params.items():
        distribution = searched.get(name)
        if distribution is None:
            return f"{name}={value!r}, a knob this search does not turn"
        try:
            inside = distribution._contains(distribution.to_internal_repr(value))
        except (ValueError, TypeError):
            inside = False
        if not inside:
            return f"{name}={value!r}, outside the search space"
    missing = sorted(set(searched) - set(trial.params))
    if trial.state.name == "COMPLETE" and missing:
        return f"no value for {', '.join(missing)}"
    return None


def _driver() -> str:
    """Who runs this search: ``host:pid``, recorded on each trial it asks for."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _live_running(study: Any) -> list[Any]:
    """Running trials of searches that are still alive (this one's, or another's)."""
    return [
        t for t in study.get_trials(deepcopy=False, states=(_running_state(),))
        if not _orphaned(t)
    ]  # fmt: skip


def _running_state() -> Any:
    import optuna

    return optuna.trial.TrialState.RUNNING


def _orphaned(trial: Any) -> bool:
    """Whether a running trial's search is dead: a process of this machine that is gone."""
    driver = trial.user_attrs.get("driver")
    if not isinstance(driver, str) or ":" not in driver:
        return False
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's: it may well be running
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _cancel_orphans(study: Any) -> None:
    """Cancel the trials a killed search left running: they will never end otherwise."""
    import optuna

    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(_running_state(),)):
        if _orphaned(trial):
            storage.set_trial_user_attr(trial._trial_id, "cancelled", True)
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _data(recipe: Recipe, dataset: str, data_dir: Any, train_size: int | None) -> PreparedData:
    data = prepare_data(recipe.preprocessing, dataset=dataset, data_dir=data_dir)
    if train_size is None:
        return data
    if train_size > data.X_train.shape[0]:
        raise ValueError(f"train_size {train_size:,} exceeds the {data.X_train.shape[0]:,} images")
    return dataclasses.replace(
        data, X_train=data.X_train[:train_size], y_train=data.y_train[:train_size]
    )


@contextlib.contextmanager
def _client(
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


def _run_trials(
    client: Any, study: Any, data: PreparedData, task: TrialTask, space: SearchSpace,
    trials: int | None, timeout: float | None, progress: Callable[[dict[str, Any]], None] | None,
    wait_for_workers: float = 120.0,
) -> None:  # fmt: skip
    """Ask, submit, wait, tell: until the study holds ``trials`` finished ones or time is up.

    A trial whose task the cluster loses (its data went with every worker, or the
    scheduler went away) did nothing wrong: it is submitted again once a worker is
    back, or, if none comes back within ``wait_for_workers`` seconds or the
    scheduler is gone, cancelled, and the search stops with :class:`ClusterLost`.
    """
    import optuna
    from distributed import wait
    from distributed.client import FuturesCancelledError

    to_search, pinned = distributions(space), fixed(space)
    deadline = None if timeout is None else time.monotonic() + timeout
    capacity = max(sum(client.nthreads().values()), 1)
    shared = [client.scatter(data, broadcast=True)]  # the data reaches each worker once
    running: dict[Any, Any] = {}
    losses: dict[int, int] = {}  # times each trial was lost with the cluster

    def submit(trial: Any) -> None:
        future = client.submit(run_trial, shared[0], task, {**pinned, **trial.params},
                               trial._trial_id, pure=False, retries=1)  # fmt: skip
        running[future] = trial

    announced = False
    # Ctrl-C is taken between steps (a trial asked is always a trial submitted and
    # recorded): the running ones are cancelled, the finished ones kept.
    with deferred_interrupt() as interrupted:
        while not interrupted():
            while len(running) < capacity and _may_ask(study, running, trials, deadline):
                trial = study.ask(to_search)
                trial.set_user_attr("driver", _driver())
                if not _within_budget(study, trial, trials):  # a concurrent search was quicker
                    _cancel(study, trial)
                    break
                submit(trial)
            if not announced and running and progress is not None:
                progress({**_counts(study, len(running)), "starting": len(running)})
            announced = announced or bool(running)
            if not running:
                return
            try:  # a second at most: a timeout or Ctrl-C is noticed while trials run
                done = wait(list(running), return_when="FIRST_COMPLETED", timeout=1.0).done
            except TimeoutError:
                continue
            except FuturesCancelledError:  # the cluster gave a trial up
                done = {future for future in running if future.status != "pending"}
            lost = []
            for future in done:
                trial = running.pop(future)
                reason = lost_to_cluster(future)
                losses[trial.number] = losses.get(trial.number, 0) + (reason is not None)
                if reason is None:
                    _tell(study, trial, future)
                elif losses[trial.number] > _MAX_LOSSES:  # lost every time: its own doing
                    trial.set_user_attr("error", f"lost {_MAX_LOSSES + 1} times: {reason}"[:500])
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    lost.append((trial, reason))
                    continue
                if progress is not None:
                    progress(_counts(study, len(running)))
            if lost:
                why = _regroup(client, shared, data, lost, wait_for_workers)
                if why is not None:
                    for trial, _ in lost:
                        _cancel(study, trial)
                    _cancel_running(study, running)
                    raise ClusterLost(why, _finished_count(study), task.storage)
                for trial, _ in lost:
                    submit(trial)
    _cancel_running(study, running)
    raise TuneInterrupted(_finished_count(study), task.storage)


def _regroup(
    client: Any, shared: list[Any], data: PreparedData, lost: list[tuple[Any, str]],
    wait_for_workers: float,
) -> str | None:  # fmt: skip
    """After the cluster lost trials: wait for a worker and send the data again.

    Returns why the cluster is gone for good, or None when the trials can run again.
    """
    reason = lost[0][1]
    if scheduler_lost(reason, client):
        return f"the scheduler went away: {reason}"
    try:
        client.wait_for_workers(1, timeout=wait_for_workers)
        shared[0] = client.scatter(data, broadcast=True)
    except (OSError, TimeoutError) as err:
        return f"no worker answered within {wait_for_workers:g} s: {type(err).__name__}: {err}"
    return None


def _cancel(study: Any, trial: Any) -> None:
    """End a trial that did not run to its end by its own doing: not counted, not failed."""
    import optuna

    trial.set_user_attr("cancelled", True)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _cancel_running(study: Any, running: dict[Any, Any]) -> None:
    for future, trial in running.items():
        future.cancel()
        _cancel(study, trial)


def _may_ask(
    study: Any, running: dict[Any, Any], trials: int | None, deadline: float | None
) -> bool:
    if deadline is not None and time.monotonic() >= deadline:
        return False
    if trials is None:
        return True
    return _finished_count(study) + len(_live_running(study)) < trials


def _within_budget(study: Any, trial: Any, trials: int | None) -> bool:
    """Whether a trial just asked for is among the first ``trials`` the study counts.

    Two searches of one study may ask at the same moment; the trials numbered first
    are run, the other is cancelled, so the study ends with ``trials`` and no more.
    """
    if trials is None:
        return True
    counted = sorted(
        t.number for t in study.get_trials(deepcopy=False)
        if (t.state.name in _FINISHED and not t.user_attrs.get("cancelled"))
        or (t.state.name == "RUNNING" and not _orphaned(t))
    )  # fmt: skip
    return trial.number in counted[:trials]


def _finished_count(study: Any) -> int:
    """Trials that count towards ``trials``: finished, and not cancelled."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state.name in _FINISHED and not t.user_attrs.get("cancelled")
    )


def _tell(study: Any, trial: Any, future: Any) -> None:
    """Record a trial's end: its value, its pruning, or why it failed."""
    import optuna

    state = optuna.trial.TrialState
    try:
        outcome = future.result()
    except Exception as err:  # it raised on its worker, or killed its workers (KilledWorker)
        trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
        study.tell(trial, state=state.FAIL)
        return
    trial.set_user_attr("seconds", round(outcome["seconds"], 3))
    trial.set_user_attr("worker", outcome["worker"])
    if outcome["state"] == "complete":
        study.tell(trial, outcome["value"])
    elif outcome["state"] == "pruned":
        study.tell(trial, state=state.PRUNED)
    else:
        trial.set_user_attr("error", outcome["error"][:500])
        study.tell(trial, state=state.FAIL)


def _counts(study: Any, running: int) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials if not t.user_attrs.get("cancelled")]
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(completed, key=lambda t: t.value, default=None)
    return {
        "done": states.count("COMPLETE"),
        "running": running,
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
    }


def _retrained(study: Any, best: int, out: Path) -> dict[str, Any] | None:
    """What an earlier run recorded of retraining trial ``best`` into ``out/best``, if
    that model is still there; None when it must be retrained."""
    record = study.user_attrs.get("xpnet_retrained")
    if not isinstance(record, dict) or record.get("trial") != best:
        return None
    if not (out / "best" / "model.npz").is_file():
        return None
    return record


def _retrain(
    study: Any, spec: str, best: int, plan: RunPlan, data: PreparedData, out: Path
) -> tuple[RunResult, list[Path]]:
    """Retrain the best trial's settings, measure them, save them into ``out``.

    On Ctrl-C the model trained so far is saved there too, and
    :class:`TuneInterrupted` says where (the search itself is complete).
    """
    from xpnet.pipeline import save_run

    try:
        result = run_plan(plan, data=data)
    except TrainingInterrupted as stop:
        saved = None
        if stop.result is not None:
            saved = save_run(stop.result, out)[0]
        raise TuneInterrupted(_finished_count(study), spec, saved) from None
    written = save_run(result, out)
    study.set_user_attr("xpnet_retrained", {"trial": best, "val_acc": result.val_acc,
                                            "test_acc": result.test_acc})  # fmt: skip
    return result, written


def _rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for t in study.trials:
        rows.append({
            "number": t.number,
            "state": "CANCELLED" if t.user_attrs.get("cancelled") else t.state.name,
            "value": t.value,
            "seconds": t.user_attrs.get("seconds"),
            "worker": t.user_attrs.get("worker"),
            "error": t.user_attrs.get("error", ""),
            **t.params,
        })  # fmt: skip
    return rows


def train_command(
    recipe: str, params: Mapping[str, Any], dataset: str, backend: str, dtype: str, seed: int
) -> str:
    """The ``xpnet train`` command line for a recipe with some settings replaced."""
    parts = ["xpnet train", f"--recipe {recipe}"]
    for name, value in sorted(params.items()):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"--{name.replace('_', '-')} {shown}")
    if dataset != "mnist":
        parts.append(f"--dataset {dataset}")
    if backend != "numpy":
        parts.append(f"--backend {backend}")
    parts += [f"--dtype {dtype}", f"--seed {seed}"]
    return " ".join(parts)
