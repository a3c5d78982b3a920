"""The search: Optuna asks, Dask workers train, Optuna is told; every trial recorded as it ends."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
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
from xpnet.errors import TuneInterrupted
from xpnet.pipeline import (
    PreparedData,
    RunResult,
    check_output_dir,
    plan_run,
    prepare_data,
    run_plan,
)
from xpnet.recipes import Recipe
from xpnet.tune._space import (
    Choices,
    Range,
    SearchSpace,
    check_space,
    default_space,
    distributions,
    fingerprint,
    fixed,
)
from xpnet.tune._storage import open_storage, storage_spec
from xpnet.tune._trial import TrialTask, make_pruner, run_trial

__all__ = ["TuneResult", "tune"]

#: Trials a study counts as finished: done, pruned, or failed for a reason of their own.
_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


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
    """

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trials: list[dict[str, Any]] = field(repr=False)
    command: str
    best_run: RunResult | None = field(repr=False)
    storage: str
    written: list[Path] = field(default_factory=list)


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
        Retrain the best settings and measure them on the test set.
    progress : callable, optional
        Called with a dict of counts (``done``, ``running``, ``pruned``, ``failed``)
        and the best so far (``best_value``, ``best_trial``) whenever a trial ends.

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
        On Ctrl-C: running trials are cancelled, finished ones stay in the storage.
    """
    trials, timeout, train_size = _checked_budget(trials, timeout, train_size)
    # Every setting and every knob's ends are checked here, before anything starts. On
    # JAX, float64 needs its 64-bit mode, in this process and (through the pickled
    # settings) in every worker.
    plan = plan_run(recipe, dataset=dataset, backend=backend, device=device, dtype=dtype,
                    seed=seed, enable_float64=dtype == "float64")  # fmt: skip
    searched: dict[str, Range | Choices] = {**default_space(plan.recipe), **(space or {})}
    check_space(searched, plan)
    out = Path(output_dir)
    spec = storage_spec(storage, out)
    settings = {"recipe": recipe, "dataset": dataset, "backend": plan.settings.compute.name,
                "dtype": dtype, "train_size": train_size}  # fmt: skip

    devices = gpu_devices(plan.settings.compute.name) if device is None else []
    count = workers or (len(devices) if len(devices) > 1 else os.cpu_count() or 1)
    threads = max((os.cpu_count() or 1) // count, 1)
    task = TrialTask(plan, devices if len(devices) > 1 else [], spec, study_name, threads)
    # Nothing is written before the engines answer: the cluster, then the storage.
    with _client(scheduler, count, threads, connect_timeout) as client:
        check_output_dir(out)
        study = _study(spec, study_name, fingerprint(searched, settings), seed)
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
    best_run = None
    if retrain:
        best_run = run_plan(plan.replace(**best_params), data=data)
        from xpnet.pipeline import save_run

        written += save_run(best_run, out / "best")
    return TuneResult(best_params, float(best.value), best.number, rows, command, best_run,
                      spec, written)  # fmt: skip


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


def _study(spec: str, name: str, space_id: str, seed: int) -> Any:
    """The study in ``spec``: created, or resumed when it searched the same space."""
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
    study.set_user_attr("xpnet_search", space_id)
    return study


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
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
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
        return
    environment = {name: str(threads) for name in
                   ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}  # fmt: skip
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **environment}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
        )  # fmt: skip
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _run_trials(
    client: Any, study: Any, data: PreparedData, task: TrialTask, space: SearchSpace,
    trials: int | None, timeout: float | None, progress: Callable[[dict[str, Any]], None] | None,
) -> None:  # fmt: skip
    """Ask, submit, wait, tell: until the study holds ``trials`` finished ones or time is up."""
    import optuna
    from distributed import wait
    from distributed.client import FuturesCancelledError

    state = optuna.trial.TrialState
    to_search, pinned = distributions(space), fixed(space)
    deadline = None if timeout is None else time.monotonic() + timeout
    capacity = max(sum(client.nthreads().values()), 1)
    shared = client.scatter(data, broadcast=True)  # the data reaches each worker once
    running: dict[Any, Any] = {}
    # Ctrl-C is taken between steps (a trial asked is always a trial submitted and
    # recorded): the running ones are cancelled, the finished ones kept.
    with deferred_interrupt() as interrupted:
        while not interrupted():
            while len(running) < capacity and _may_ask(study, running, trials, deadline):
                trial = study.ask(to_search)
                future = client.submit(
                    run_trial, shared, task, {**pinned, **trial.params}, trial._trial_id,
                    pure=False, retries=1,
                )  # fmt: skip
                running[future] = trial
            if not running:
                return
            try:  # a second at most: a timeout or Ctrl-C is noticed while trials run
                done = wait(list(running), return_when="FIRST_COMPLETED", timeout=1.0).done
            except TimeoutError:
                continue
            except FuturesCancelledError:  # the cluster gave a trial up (its worker lost)
                done = {future for future in running if future.status != "pending"}
            for future in done:
                trial = running.pop(future)
                _tell(study, trial, future, state)
                if progress is not None:
                    progress(_counts(study, len(running)))
    for future, trial in running.items():
        future.cancel()
        trial.set_user_attr("cancelled", True)
        study.tell(trial, state=state.FAIL)
    finished = _finished_count(study)
    raise TuneInterrupted(finished, task.storage)


def _may_ask(
    study: Any, running: dict[Any, Any], trials: int | None, deadline: float | None
) -> bool:
    if deadline is not None and time.monotonic() >= deadline:
        return False
    if trials is None:
        return True
    finished = _finished_count(study)
    return finished + len(running) < trials


def _finished_count(study: Any) -> int:
    """Trials that count towards ``trials``: finished, and not cancelled by Ctrl-C."""
    return sum(
        1 for t in study.trials if t.state.name in _FINISHED and not t.user_attrs.get("cancelled")
    )


def _tell(study: Any, trial: Any, future: Any, state: Any) -> None:
    """Record a trial's end: its value, its pruning, or why it failed (a worker lost, say)."""
    try:
        outcome = future.result()
    except (Exception, asyncio.CancelledError) as err:  # its worker died, or it was given up
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
    states = [t.state.name for t in study.trials if not t.user_attrs.get("cancelled")]
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = max(completed, key=lambda t: t.value, default=None)
    return {
        "done": states.count("COMPLETE"),
        "running": running,
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
    }


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
