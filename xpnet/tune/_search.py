"""The search: the study, the cluster and the trials put together, then the best retrained.

Optuna and Dask are imported when a search starts: the ranges and choices need neither.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from xpnet import _checks
from xpnet._atomic import check_writable_directory
from xpnet._typing import Device, DType
from xpnet._wording import setting
from xpnet.backend import Backend, gpu_devices
from xpnet.errors import TrainingInterrupted, TuneInterrupted
from xpnet.pipeline import (
    PreparedData,
    RunPlan,
    RunResult,
    check_output_dir,
    plan_run,
    prepare_data,
    run_plan,
    save_run,
)
from xpnet.recipes import RECIPES, Recipe
from xpnet.tune._report import FILES
from xpnet.tune._space import (
    Choices,
    Range,
    check_space,
    fixed,
    identity,
    searched_space,
)

if TYPE_CHECKING:
    import optuna

__all__ = ["TuneResult", "train_command", "tune"]


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
    recipe: str | Recipe = "lab",
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    backend: str | ModuleType | Backend = "numpy",
    device: Device | None = None,
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
    together: int = 1,
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
        :func:`default_space` around the recipe (``low == high`` fixes a knob). Their
        bounds and choices may be NumPy numbers.
    recipe : str or Recipe
        The recipe the trials start from: a name of :data:`xpnet.recipes.RECIPES`, or
        a :class:`xpnet.recipes.Recipe` (the best settings' command then gives the named
        recipe closest to it, with each field that differs).
    dataset, data_dir, backend, device, dtype, seed
        As for :func:`xpnet.pipeline.run`; the seed also seeds the sampler. float64 on
        JAX switches on its 64-bit mode, here and in the workers.
    train_size : int, optional
        Train on the first ``train_size`` training images only, for a quick search.
        The data is read, and ``train_size`` checked against it, before a cluster
        starts or anything is written.
    storage : str or path, optional
        An Optuna storage: an SQLite file path (or ``sqlite:///study.db``), a journal
        file (``journal:study.log``), or a PostgreSQL/MySQL URL shared by many machines.
        Default: the SQLite file ``study.db`` in ``output_dir``. A database records each
        running trial's heartbeat: the trials of a search that died are failed after 20
        seconds without one, and run again; a journal has no heartbeats.
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
        and the best so far (``best_value``, ``best_trial``) whenever a trial ends, with
        ``seconds_left`` (an estimate of the search's time left: None until a trial of
        this run has ended); once, with ``starting`` (the trials started at once),
        ``budget`` (the trials this run is to finish, None for a timeout alone) and
        ``timeout`` added, when the first trials of this run start; and with
        ``{"retraining": trial}`` when retraining begins.
    together : int, default 1
        Trials each Dask task asks for and trains together (:func:`xpnet.training.fit_many`),
        each reporting its epochs and pruned alone, its result as alone (to rounding); a
        lost task's trials start over. Not with early stopping.

    Returns
    -------
    TuneResult

    Raises
    ------
    TypeError, ValueError
        For bad settings or ranges (each knob's ends checked as training checks them),
        a storage that cannot be opened or holds another search (the differences
        named), or a scheduler that does not answer: before any trial runs, and before
        anything is written.
    xpnet.errors.DataError
        For data that is missing, cannot be downloaded, is not the dataset's, or has
        fewer training images than ``train_size``: before a cluster starts.
    ImportError, RuntimeError
        For a backend that is not installed, or a GPU this machine lacks.
    xpnet.errors.TuneInterrupted
        On Ctrl-C: running trials are cancelled, finished ones stay in the storage
        (during the retraining: the model trained so far is saved in ``best/``).
    xpnet.errors.ClusterLost
        When the scheduler goes away, or no worker comes back after all were lost:
        the trials it took are cancelled (not counted), finished ones kept.

    Notes
    -----
    A search is its space and its fixed settings: the recipe, dataset, backend, dtype,
    ``train_size`` and the seed, which seeds every trial. The same search run again
    resumes its study; one that differs in any of them (another ``seed``, say) is
    refused with what differs, so that a study never mixes trials of two seeds and
    its best settings' command carries the seed they were found with.

    A trial whose worker dies, or that the cluster loses with all its workers, fails and
    runs again with its settings as a new trial (up to three times), not counted. The
    workers need no access to the storage: each trial reports its epochs to this process
    through the scheduler.
    """
    trials, timeout, train_size = _checked_budget(trials, timeout, train_size)
    _checks.flag("retrain", retrain)
    _checks.optional_callable("progress", progress)
    together = _checks.positive_int(setting("together"), together)
    _checks.real(setting("connect_timeout"), connect_timeout, low=0.0, low_open=True)
    for name, text in (("study_name", study_name), ("scheduler", scheduler or "")):
        if not isinstance(text, str):
            raise TypeError(f"{name} must be a string, got {text!r}")
    # Every setting and every knob's ends are checked here, before anything starts. On
    # JAX, float64 needs its 64-bit mode, in this process and (through the pickled
    # settings) in every worker.
    plan = plan_run(recipe, dataset=dataset, backend=backend, device=device, dtype=dtype,
                    seed=seed, enable_float64=dtype == "float64")  # fmt: skip
    if together > 1 and (plan.settings.early_stopping or plan.settings.restore_best):
        raise ValueError(f"{setting('together')} above 1 stops no trial early: leave "
                         f"{setting('early_stopping')} and {setting('restore_best')} off, or give "
                         f"{setting('together', 1)}")  # fmt: skip
    searched = searched_space(plan.recipe, space)
    check_space(searched, plan, together)
    from xpnet.tune import _report, _study
    from xpnet.tune._cluster import connect
    from xpnet.tune._dispatch import run_trials
    from xpnet.tune._trial import TrialTask

    out = Path(output_dir)
    spec = _study.storage_spec(storage, out)
    settings = {"recipe": dataclasses.asdict(plan.recipe), "dataset": dataset,
                "backend": plan.settings.compute.name, "dtype": dtype, "train_size": train_size,
                "seed": plan.settings.seed}  # fmt: skip
    search = identity(searched, settings)
    devices = gpu_devices(plan.settings.compute.name) if device is None else []
    count = len(devices) if len(devices) > 1 else os.cpu_count() or 1
    count = count if workers is None else _checks.positive_int(setting("workers"), workers)
    threads = max((os.cpu_count() or 1) // count, 1)
    channel = f"xpnet-tune-{uuid.uuid4().hex}"  # the search's queue on the scheduler
    task = TrialTask(plan, devices if len(devices) > 1 else [], channel, threads)
    data = None
    try:  # read, never written, so that a search with nothing left to run starts no cluster
        study = _study.open_study(_study.open_storage(spec), spec, study_name, search, seed,
                                  searched, write=False)  # fmt: skip
    except FileNotFoundError:
        study = None
    if study is None or not _nothing_left(study, trials):
        # The data is read first (missing, not the dataset's, too few images for
        # train_size); then nothing is written until the cluster and the storage answer.
        data = _data(plan.recipe, dataset, data_dir, train_size)
        with connect(scheduler, count, threads, connect_timeout) as client:
            _check_output_dir(out, retrain)
            kept = _study.open_storage(spec, create=True)
            study = _study.open_study(kept, spec, study_name, search, seed, searched)
            assert study is not None
            run_trials(client, study, kept, spec, data, task, searched, trials, timeout,
                       progress, together=together)  # fmt: skip
    else:
        _check_output_dir(out, retrain)

    rows = _study.rows(study)
    written = _report.write(out, rows, searched)  # failed trials' reasons included
    best = study.best_trial if any(r["state"] == "COMPLETE" for r in rows) else None
    if best is None or best.value is None:
        raise ValueError(
            f"no trial of study {study_name!r} finished with a value; "
            f"{_failure_summary(rows)} (every trial is in {written[0]})"
        )
    best_params = {**fixed(searched), **best.params}
    command = train_command(plan.recipe, best_params, dataset, plan.settings.compute.name, dtype,
                            seed, train_size)  # fmt: skip
    # An earlier run's record of retraining the best trial, if best/ still holds it.
    retrained = study.user_attrs.get("xpnet_retrained")
    if not (isinstance(retrained, dict) and retrained.get("trial") == best.number
            and (out / "best" / "model.npz").is_file()):  # fmt: skip
        retrained = None
    best_run = None
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
    trials: object, timeout: object, train_size: object
) -> tuple[int | None, float | None, int | None]:
    """The budget as plain Python numbers (NumPy's integers accepted), checked."""
    if trials is None and timeout is None:
        raise ValueError("give a number of trials, a timeout, or both")
    if trials is not None:
        trials = _checks.positive_int(setting("trials"), trials)
    if timeout is not None:
        timeout = _checks.real(setting("timeout"), timeout, low=0.0, low_open=True)
    if train_size is not None:
        train_size = _checks.positive_int(setting("train_size"), train_size)
        if train_size < 2:
            raise ValueError(f"{setting('train_size')} must be at least 2, got {train_size!r}")
    return trials, timeout, train_size


def _check_output_dir(out: Path, retrain: bool) -> None:
    """Check that ``out`` takes the search's files, and ``best/`` a run's, before a trial."""
    check_writable_directory(out, files=FILES)
    if retrain:  # best/ is this search's own (another search's storage is refused)
        check_output_dir(out / "best", create=False, overwrite=True)


def _nothing_left(study: optuna.Study, trials: int | None) -> bool:
    """Whether the study holds ``trials`` finished trials already, and none running or queued."""
    from xpnet.tune._study import FINISHED, rows

    states = [row["state"] for row in rows(study)]
    pending = "RUNNING" in states or "WAITING" in states
    return trials is not None and not pending and sum(s in FINISHED for s in states) >= trials


def _failure_summary(rows: list[dict[str, Any]]) -> str:
    """Why the trials failed: each distinct reason once, with its count, most common first."""
    reasons = Counter(row["error"] for row in rows if row["state"] == "FAIL" and row["error"])
    if not reasons:
        return "none failed (they were pruned or cancelled)"
    common = reasons.most_common(3)
    return "trials failed with: " + "; ".join(f"{reason} ({n}x)" for reason, n in common)


def _data(
    recipe: Recipe, dataset: str, data_dir: str | os.PathLike[str] | None, train_size: int | None
) -> PreparedData:
    data = prepare_data(recipe.preprocessing, dataset=dataset, data_dir=data_dir)
    return data.first(train_size)


def _retrain(
    study: optuna.Study, spec: str, best: int, plan: RunPlan, data: PreparedData, out: Path
) -> tuple[RunResult, list[Path]]:
    """Retrain the best trial's settings, measure them, save them into ``out``; on Ctrl-C,
    the model trained so far, and :class:`TuneInterrupted` says where."""
    from xpnet.tune._study import finished_count

    try:
        result = run_plan(plan, data=data)
    except TrainingInterrupted as stop:
        saved = None if stop.result is None else save_run(stop.result, out, overwrite=True)[0]
        raise TuneInterrupted(finished_count(study), spec, saved) from None
    written = save_run(result, out, overwrite=True)  # the best trial's, replaced
    study.set_user_attr("xpnet_retrained", {"trial": best, "val_acc": result.val_acc,
                                            "test_acc": result.test_acc})  # fmt: skip
    return result, written


def train_command(
    recipe: str | Recipe, params: Mapping[str, Any], dataset: str, backend: str, dtype: str,
    seed: int, train_size: int | None = None,
) -> str:  # fmt: skip
    """The ``xpnet train`` command line that trains what a trial trained: a recipe with
    some settings replaced, on the first ``train_size`` training images (None: all).

    A :class:`~xpnet.recipes.Recipe` is given as the named recipe with the fewest fields
    that differ from it, and those fields; ``params`` (a search's values) as
    ``--name value``. Floats are written in full (``repr``), so that the command trains
    with the very values the trial had.
    """
    name, given = (recipe, {}) if isinstance(recipe, str) else _closest_recipe(recipe)
    parts = ["xpnet train", f"--recipe {name}"]
    for option, value in sorted({**given, **params}.items()):
        flag = f"--{option.replace('_', '-')}"
        if isinstance(value, bool | np.bool_):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            parts.append(f"{flag} {float(value)!r}" if isinstance(value, float) else
                         f"{flag} {value}")  # fmt: skip
    if train_size is not None:
        parts.append(f"--train-size {train_size}")
    if dataset != "mnist":
        parts.append(f"--dataset {dataset}")
    if backend != "numpy":
        parts.append(f"--backend {backend}")
    parts += [f"--dtype {dtype}", f"--seed {seed}"]
    return " ".join(parts)


def _closest_recipe(recipe: Recipe) -> tuple[str, dict[str, Any]]:
    """The named recipe with the fewest fields that differ from ``recipe``, and those
    fields with ``recipe``'s values."""
    fields = dataclasses.asdict(recipe)

    def differing(named: Recipe) -> dict[str, Any]:
        return {field: value for field, value in fields.items()
                if value != getattr(named, field)}  # fmt: skip

    name = min(RECIPES, key=lambda known: len(differing(RECIPES[known])))
    return name, differing(RECIPES[name])
