"""A planned run carried out: the network built, trained and measured (:class:`RunResult`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import numpy as np

from xpnet import model_file
from xpnet._typing import Array, Compile, Device, DType, JSONObject
from xpnet.backend import Backend, dtype_name, product_size, resolve_threads, using_threads
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.metrics import accuracy, confusion_matrix
from xpnet.neural_net import TwoLayerNet
from xpnet.pipeline._data import PreparedData, prepare_data
from xpnet.pipeline._plan import RunPlan, plan_run
from xpnet.recipes import Recipe
from xpnet.training import (
    Checkpoint,
    Checkpointing,
    EpochCallback,
    ProgressCallback,
    TrainSettings,
    fit,
    read_checkpoint,
)

__all__ = [
    "RunMetadata",
    "RunResult",
    "make_net",
    "predict_on_threads",
    "run",
    "run_plan",
    "train_and_measure",
]


class _RunMetadata(TypedDict):
    """The keys every run's metadata has."""

    dataset: str
    recipe: JSONObject
    seed: int | None


class RunMetadata(_RunMetadata, total=False):
    """What a model file records of a run (:meth:`RunResult.metadata`): the dataset, the
    recipe's fields and the seed; then, for a run that finished, ``results`` (its
    ``val_acc`` and ``test_acc``), or, for one stopped by Ctrl-C, ``interrupted: True``."""

    results: dict[str, float | None]
    interrupted: bool


@dataclass
class RunResult:
    """What :func:`run` trained and measured.

    Attributes
    ----------
    net : TwoLayerNet
        The trained network, carrying its preprocessing.
    history : dict
        ``loss_history``, ``train_acc_history``, ``val_acc_history``.
    recipe : Recipe
    dataset : str
    seed : int
    val_acc, test_acc : float or None
        None for a run stopped by Ctrl-C (nothing was measured).
    test_predictions : numpy.ndarray or None
        The predicted class of every test image.
    confusion : numpy.ndarray or None, shape (C, C)
        Test-set counts: rows true classes, columns predicted.
    interrupted : bool
        Whether Ctrl-C stopped the training early.
    checkpoint : pathlib.Path or None
        Where the run wrote its checkpoints (None: it wrote none).
    """

    net: TwoLayerNet
    history: dict[str, list[float]]
    recipe: Recipe
    dataset: str
    seed: int | None
    val_acc: float | None = None
    test_acc: float | None = None
    test_predictions: np.ndarray | None = field(default=None, repr=False)
    confusion: np.ndarray | None = field(default=None, repr=False)
    interrupted: bool = False
    checkpoint: Path | None = None

    def metadata(self) -> RunMetadata:
        """What a model file records of the run."""
        metadata: RunMetadata = {
            "dataset": self.dataset,
            "recipe": dataclasses.asdict(self.recipe),
            "seed": self.seed,
        }
        if self.interrupted:
            metadata["interrupted"] = True
        else:
            metadata["results"] = {"val_acc": self.val_acc, "test_acc": self.test_acc}
        return metadata


def run(
    recipe: str | Recipe = "lab",
    *,
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
    backend: str | ModuleType | Backend = "numpy",
    device: Device | None = None,
    dtype: DType = "float64",
    seed: int = 0,
    compile: Compile = "auto",
    threads: int | None = None,
    progress: ProgressCallback | None = None,
    data: PreparedData | None = None,
    epochs: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike[str] | Checkpoint | None = None,
    **overrides: Any,  # Any: recipe fields of every type, as recipe_with's
) -> RunResult:
    """Train a network by a recipe and measure it on the validation and test sets.

    Everything is checked (:func:`~xpnet.pipeline.plan_run`) before the data is read or
    downloaded.

    Parameters
    ----------
    recipe : str or Recipe, default "lab"
        A name of :data:`xpnet.recipes.RECIPES` (``"lab"``, the handout's best
        settings; ``"fast"``; ``"best"``; ``"best-augmented"``), or a
        :class:`~xpnet.recipes.Recipe`.
    dataset : {"mnist", "fashion-mnist"}
    data_dir : path-like, optional
        Where the four IDX files are (see :func:`xpnet.data.data_dir`).
    backend, device, dtype, seed
        As for :class:`xpnet.TwoLayerNet`.
    compile : {"auto", True, False}
        As for :meth:`xpnet.TwoLayerNet.train`.
    threads : int, optional
        The CPU threads training and measuring run on; None: the count chosen
        for the size of their products (:attr:`xpnet.training.TrainSettings.threads`).
    progress : callable, optional
        As for :meth:`xpnet.TwoLayerNet.train`.
    data : PreparedData, optional
        Data already prepared with the recipe's preprocessing (a search reuses it).
    epochs : int, optional
        Train this many epochs instead of the recipe's ``num_iters`` (an override of
        ``num_iters`` and ``epochs`` together are refused): ``epochs * max(rows //
        batch_size, 1)`` iterations, with the :data:`~xpnet.pipeline.TRAIN_ROWS`
        training rows of the dataset (or ``data``'s).
    checkpoint, checkpoint_every, resume
        As for :meth:`xpnet.TwoLayerNet.train`; the checkpoint also records the dataset,
        the recipe and the seed, from which :func:`plan_resumed` plans the run again
        (``xpnet train --resume DIR``).
    **overrides
        Recipe fields to replace, such as ``hidden_size=50``
        (:mod:`xpnet.hyperparameters` says what each means and may be).

    Returns
    -------
    RunResult

    Raises
    ------
    xpnet.errors.TrainingInterrupted
        On Ctrl-C, with the partial :class:`RunResult` as its ``result`` attribute.
    xpnet.errors.TrainingDivergedError
        If the loss becomes NaN or infinite.
    TypeError, ValueError, ImportError, RuntimeError, xpnet.errors.DataError
        For bad settings, a missing library or GPU, or missing or corrupt data.
    """
    plan = plan_run(recipe, dataset=dataset, backend=backend, device=device, dtype=dtype,
                    seed=seed, compile=compile, threads=threads, data=data, epochs=epochs,
                    **overrides)  # fmt: skip
    return run_plan(plan, data_dir=data_dir, data=data, progress=progress,
                    checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                    resume=resume)  # fmt: skip


def run_plan(
    plan: RunPlan,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    data: PreparedData | None = None,
    progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike[str] | Checkpoint | None = None,
) -> RunResult:
    """Read the data (unless given), build the network and train it by ``plan``.

    As :func:`run`, which documents the arguments; ``on_epoch`` is
    :meth:`xpnet.TwoLayerNet.train`'s.
    """
    if resume is not None and not isinstance(resume, Checkpoint):
        resume = read_checkpoint(resume)  # a bad file is told before the data is read
    if data is None:
        data = prepare_data(plan.recipe.preprocessing, dataset=plan.dataset, data_dir=data_dir)
    data.check_preprocessing(plan.recipe.preprocessing)  # before the network is built
    net = make_net(plan.settings, data)
    return train_and_measure(net, plan, data, progress=progress, on_epoch=on_epoch,
                             checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                             resume=resume)  # fmt: skip


def make_net(settings: TrainSettings, data: PreparedData) -> TwoLayerNet:
    """The network ``settings`` describe, carrying the data's preprocessing.

    Raises
    ------
    ValueError
        If the data's rows or classes are not the settings' sizes.
    """
    D, H, C = settings.sizes
    if (data.X_train.shape[1], data.num_classes) != (D, C):
        raise ValueError(
            f"the data has rows of {data.X_train.shape[1]} values and {data.num_classes} "
            f"classes; the settings describe a {D}-{H}-{C} network"
        )
    compute = settings.compute
    net = TwoLayerNet(D, H, C, std=settings.std, backend=compute.resolved, dtype=compute.dtype,
                      seed=settings.seed, init=settings.init)  # fmt: skip
    net.preprocessing = data.preprocessing
    return net


def train_and_measure(
    net: TwoLayerNet,
    plan: RunPlan,
    data: PreparedData,
    *,
    progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike[str] | Checkpoint | None = None,
) -> RunResult:
    """Train ``net`` by ``plan`` on ``data``; measure it on the validation and test sets.

    ``net`` must be the network the plan's settings describe (as :func:`make_net` builds
    it); it keeps the trained parameters and the record of the run, as after
    :meth:`xpnet.TwoLayerNet.train`. ``progress``, ``on_epoch``, ``checkpoint``,
    ``checkpoint_every`` and ``resume`` are as for that method. Raises as :func:`run` does.

    Raises
    ------
    ValueError
        Also if the data was prepared with another preprocessing than the recipe's, or
        ``net``'s sizes, backend, device, dtype or seed are not the plan's.
    """
    data.check_preprocessing(plan.recipe.preprocessing)
    _check_net_is_planned(net, plan.settings)
    blank = data.preprocessing(np.zeros((1, net.sizes[0]), dtype=np.float32))[0]
    result = RunResult(net, {}, plan.recipe, plan.dataset, plan.settings.seed,
                       checkpoint=None if checkpoint is None else Path(checkpoint))  # fmt: skip
    if resume is not None and not isinstance(resume, Checkpoint):
        resume = read_checkpoint(resume)
    writing = None
    if checkpoint is not None:
        described, extras = model_file.preprocessing_contents(net.preprocessing)
        recorded = {**result.metadata(), **described}
        del recorded["results"]  # nothing measured yet
        writing = Checkpointing(checkpoint, checkpoint_every, recorded, extras)
    try:
        trained = fit(net.params, plan.settings, data.X_train, data.y_train, data.X_val,
                      data.y_val, rng=net.rng, blank=blank, progress=progress,
                      on_epoch=on_epoch, checkpoint=writing, resume=resume)  # fmt: skip
    except TrainingDivergedError as diverged:
        net.params = diverged.params
        raise
    except TrainingInterrupted as stop:
        net.params, net.last_training = stop.params, stop.record
        result.history, result.interrupted = stop.history, True
        stop.result = result
        raise
    net.params, net.last_training = trained.params, trained.record
    result.history = trained.history
    threads = plan.settings.threads
    result.val_acc = float(accuracy(np, data.y_val, predict_on_threads(net, data.X_val, threads)))
    # the test set, predicted once
    result.test_predictions = predict_on_threads(net, data.X_test, threads)
    result.test_acc = float(accuracy(np, data.y_test, result.test_predictions))
    result.confusion = confusion_matrix(data.y_test, result.test_predictions, data.num_classes)
    return result


def predict_on_threads(net: TwoLayerNet, X: Array, threads: int | None) -> Array:
    """``net.predict(X)`` for rows ``X`` (N, D), on ``threads`` CPU threads (checked by the
    caller); None: the count :data:`xpnet.backend.THREADS_BY_SIZE` gives its largest
    product, the N rows by the first layer's weights. The threads are restored after."""
    D, H, _ = net.sizes
    size = product_size(int(X.shape[0]), D, H)
    with using_threads(resolve_threads(threads, size, net.backend), net.backend, size):
        return net.predict(X)


def _check_net_is_planned(net: TwoLayerNet, settings: TrainSettings) -> None:
    """Refuse a network that is not the one ``settings`` describe: its run would record
    settings it did not follow."""
    compute = settings.compute
    planned = {
        "sizes": settings.sizes,
        "backend": compute.resolved,
        "dtype": compute.dtype,
        "seed": settings.seed,
    }
    found = {"sizes": net.sizes, "backend": net.backend, "dtype": dtype_name(net.dtype),
             "seed": net.seed}  # fmt: skip
    differ = [name for name in planned if found[name] != planned[name]]
    if differ:
        said = "; ".join(
            f"its {name} {_shown(found[name])}, the plan's {_shown(planned[name])}"
            for name in differ
        )
        raise ValueError(
            f"the network is not the one the plan describes ({said}): build it with "
            f"make_net(plan.settings, data)"
        )


def _shown(value: object) -> str:
    """Sizes as ``784-50-10``, a backend as ``numpy on cpu``, anything else as text."""
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    return str(value)
