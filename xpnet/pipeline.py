"""The main job as a library call: data, preprocessing, network, training, metrics, files.

``xpnet train`` is :func:`run` followed by :func:`save_run`; ``xpnet evaluate`` is
:func:`evaluate`; the notebook, the benchmark and ``xpnet tune`` use the same
pieces, so each does what the command line does in as many lines::

    from xpnet.pipeline import run, save_run
    result = run("fast", backend="torch", dtype="float32")
    print(result.val_acc, result.test_acc)
    save_run(result, "xpnet-output")
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xpnet import _checks
from xpnet._atomic import atomic_write, check_writable_directory
from xpnet._typing import Compile, DType
from xpnet.backend import Backend
from xpnet.data import mnist
from xpnet.errors import DataError, ModelFileError, TrainingInterrupted
from xpnet.metrics import accuracy, confusion_matrix
from xpnet.neural_net import TwoLayerNet, train_keywords
from xpnet.preprocess import Preprocessing, fit_preprocessing
from xpnet.recipes import RECIPES, Recipe
from xpnet.training import (
    ComputeSettings,
    EpochCallback,
    ProgressCallback,
    TrainSettings,
    num_iters_for,
)

__all__ = [
    "TRAIN_ROWS",
    "Evaluation",
    "PreparedData",
    "RunPlan",
    "RunResult",
    "check_output_dir",
    "evaluate",
    "make_net",
    "plan_run",
    "prepare_data",
    "recipe_with",
    "run",
    "run_plan",
    "save_run",
    "train_and_measure",
]


#: Training rows of a dataset of the MNIST layout as :func:`prepare_data` splits it:
#: the files' 60,000 training images less the 5,000 kept for validation.
TRAIN_ROWS = 55_000


@dataclass(frozen=True)
class PreparedData:
    """A dataset's six arrays as network rows, and how they were made.

    Attributes
    ----------
    X_train, X_val, X_test : numpy.ndarray of float32, shapes (N, D)
    y_train, y_val, y_test : numpy.ndarray of int64, shapes (N,)
    preprocessing : Preprocessing
        Fitted on the training images; applies to any images of the dataset.
    dataset : str
    num_classes : int
        From the labels: the largest label plus one.
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    preprocessing: Preprocessing
    dataset: str
    num_classes: int


def prepare_data(
    preprocessing: str = "subtract_mean_image",
    *,
    dataset: str = "mnist",
    data_dir: str | os.PathLike[str] | None = None,
) -> PreparedData:
    """Read a dataset (downloading it if needed) and preprocess it for the network.

    Raises
    ------
    DataError
        If the files are missing and cannot be downloaded, or are corrupt.
    ValueError
        For an unknown preprocessing or dataset.
    """
    X_train, y_train, X_val, y_val, X_test, y_test = mnist.read_data_sets(data_dir, dataset=dataset)
    fitted = fit_preprocessing(preprocessing, X_train)
    labels = [y for y in (y_train, y_val, y_test) if y.size]
    return PreparedData(
        fitted(X_train), y_train, fitted(X_val), y_val, fitted(X_test), y_test,
        preprocessing=fitted,
        dataset=dataset,
        num_classes=int(max(int(y.max()) for y in labels)) + 1,
    )  # fmt: skip


def recipe_with(recipe: str | Recipe = "lab", **overrides: Any) -> Recipe:
    """A recipe by name (or as given), with any of its fields replaced.

    Raises
    ------
    TypeError, ValueError
        For a recipe that is neither, an unknown recipe name or field.
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
        recipe = RECIPES[recipe]
    elif not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a recipe's name or a Recipe, got {recipe!r}")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown recipe settings {unknown}; a recipe has {sorted(fields)}")
    return dataclasses.replace(recipe, **overrides)


@dataclass(frozen=True)
class RunPlan:
    """A recipe checked for one dataset and compute: everything :func:`run_plan` trains.

    Attributes
    ----------
    recipe : Recipe
    settings : TrainSettings
        The recipe as validated settings, with the dataset's sizes, the seed and the
        compute settings.
    dataset : str
    """

    recipe: Recipe
    settings: TrainSettings
    dataset: str

    def replace(self, *, compute: ComputeSettings | None = None, **overrides: Any) -> RunPlan:
        """The plan with some recipe fields (or the compute settings) replaced, checked again.

        Raises
        ------
        TypeError, ValueError
            As :func:`plan_run` does.
        """
        recipe = recipe_with(self.recipe, **overrides)
        s = self.settings
        settings = recipe.settings(input_size=s.input_size, output_size=s.output_size,
                                   seed=s.seed, compile=s.compile,
                                   compute=compute or s.compute)  # fmt: skip
        return RunPlan(recipe, settings, self.dataset)


def plan_run(
    recipe: str | Recipe = "lab",
    *,
    dataset: str = "mnist",
    backend: str | ModuleType | Backend = "numpy",
    device: Any = None,
    dtype: DType = "float64",
    seed: int = 0,
    compile: Compile = "auto",
    enable_float64: bool = False,
    data: PreparedData | None = None,
    epochs: int | None = None,
    **overrides: Any,
) -> RunPlan:
    """Check everything a run needs before anything is read, written or trained.

    Parameters are those of :func:`run`; ``enable_float64`` is
    :class:`xpnet.training.ComputeSettings`'s. The network's sizes (and the training
    rows, for ``epochs``) come from ``data`` when given, else from the dataset (28x28
    images, its classes, :data:`TRAIN_ROWS` training rows).

    Raises
    ------
    TypeError, ValueError
        For an unknown recipe, field or dataset, or settings that cannot run.
    ImportError, RuntimeError
        For a backend that is not installed, or a GPU this machine lacks.
    """
    chosen = recipe_with(recipe, **overrides)
    ds = mnist.DATASETS[_checks.choice("dataset", dataset, tuple(mnist.DATASETS))]
    if data is not None:
        sizes, rows = (data.X_train.shape[1], data.num_classes), data.X_train.shape[0]
    else:
        sizes = mnist.IMAGE_SHAPE[0] * mnist.IMAGE_SHAPE[1], len(ds.class_names)
        rows = TRAIN_ROWS
    if epochs is not None:
        num_iters = num_iters_for(overrides.get("num_iters"), epochs, rows, chosen.batch_size)
        chosen = dataclasses.replace(chosen, num_iters=num_iters)
    compute = ComputeSettings(backend, device, dtype, enable_float64=enable_float64)
    settings = chosen.settings(input_size=sizes[0], output_size=sizes[1], seed=seed,
                               compile=compile, compute=compute)  # fmt: skip
    return RunPlan(chosen, settings, dataset)


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

    def metadata(self) -> dict[str, Any]:
        """What a model file records of the run."""
        metadata: dict[str, Any] = {
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
    device: Any = None,
    dtype: DType = "float64",
    seed: int = 0,
    compile: Compile = "auto",
    progress: ProgressCallback | None = None,
    data: PreparedData | None = None,
    epochs: int | None = None,
    **overrides: Any,
) -> RunResult:
    """Train a network by a recipe and measure it on the validation and test sets.

    Everything is checked (:func:`plan_run`) before the data is read or downloaded.

    Parameters
    ----------
    recipe : str or Recipe, default "lab"
        A name of :data:`xpnet.recipes.RECIPES` (``"lab"``, the handout's best
        settings; ``"fast"``; ``"best"``; ``"best-augmented"``), or a :class:`Recipe`.
    dataset : {"mnist", "fashion-mnist"}
    data_dir : path-like, optional
        Where the four IDX files are (see :func:`xpnet.data.data_dir`).
    backend, device, dtype, seed
        As for :class:`xpnet.TwoLayerNet`.
    compile : {"auto", True, False}
        As for :meth:`xpnet.TwoLayerNet.train`.
    progress : callable, optional
        As for :meth:`xpnet.TwoLayerNet.train`.
    data : PreparedData, optional
        Data already prepared with the recipe's preprocessing (a search reuses it).
    epochs : int, optional
        Train this many epochs instead of the recipe's ``num_iters`` (an override of
        ``num_iters`` and ``epochs`` together are refused): ``epochs * max(rows //
        batch_size, 1)`` iterations, with the :data:`TRAIN_ROWS` training rows of the
        dataset (or ``data``'s).
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
                    seed=seed, compile=compile, data=data, epochs=epochs,
                    **overrides)  # fmt: skip
    return run_plan(plan, data_dir=data_dir, data=data, progress=progress)


def run_plan(
    plan: RunPlan,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    data: PreparedData | None = None,
    progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> RunResult:
    """Read the data (unless given), build the network and train it by ``plan``.

    As :func:`run`, which documents the arguments; ``on_epoch`` is
    :meth:`xpnet.TwoLayerNet.train`'s.
    """
    if data is None:
        data = prepare_data(plan.recipe.preprocessing, dataset=plan.dataset, data_dir=data_dir)
    net = make_net(plan.settings, data)
    return train_and_measure(net, plan, data, progress=progress, on_epoch=on_epoch)


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
) -> RunResult:
    """Train ``net`` by ``plan`` on ``data``; measure it on the validation and test sets.

    ``progress`` and ``on_epoch`` are as for :meth:`xpnet.TwoLayerNet.train`. Raises
    as :func:`run` does.

    Raises
    ------
    ValueError
        Also if the data was prepared with another preprocessing than the recipe's.
    """
    if data.preprocessing.name != plan.recipe.preprocessing:
        raise ValueError(
            f"data was prepared with {data.preprocessing.name!r}, the recipe wants "
            f"{plan.recipe.preprocessing!r}"
        )
    result = RunResult(net, {}, plan.recipe, plan.dataset, plan.settings.seed)
    try:
        result.history = net.train(data.X_train, data.y_train, data.X_val, data.y_val,
                                   progress=progress, on_epoch=on_epoch,
                                   **train_keywords(plan.settings))  # fmt: skip
    except TrainingInterrupted as stop:
        result.history, result.interrupted = stop.history, True
        stop.result = result
        raise
    result.val_acc = float(accuracy(np, data.y_val, net.predict(data.X_val)))
    result.test_predictions = net.predict(data.X_test)  # the test set, predicted once
    result.test_acc = float(accuracy(np, data.y_test, result.test_predictions))
    result.confusion = confusion_matrix(data.y_test, result.test_predictions, data.num_classes)
    return result


def save_run(result: RunResult, output_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``model.npz``, ``history.json`` and the plots of a run; return the paths.

    The model comes first, so nothing after it can cost it. Without matplotlib the
    plots are left out, with a note on stderr.
    """
    out = Path(output_dir)
    written = [out / "model.npz"]
    result.net.save(written[0], result.metadata())
    if result.interrupted:
        return written
    written.append(out / "history.json")
    history = {**result.history, "val_acc": result.val_acc, "test_acc": result.test_acc}
    with atomic_write(written[1], "w") as f:
        json.dump(history, f)
    names = mnist.DATASETS[result.dataset].class_names
    return written + _plots(out, result.net, history, result.confusion, names)


def _plots(
    out: Path, net: TwoLayerNet | None, history: Any, confusion: Any, class_names: Any
) -> list[Path]:
    from xpnet import plots

    figures: dict[str, Callable[[], Any]] = {}
    if history is not None:
        figures["loss_accuracy.png"] = lambda: plots.plot_history(history)
    if net is not None:
        figures["weights.png"] = lambda: plots.plot_weights(net.params["W1"])
    figures["confusion.png"] = lambda: plots.plot_confusion(confusion, class_names)
    written: list[Path] = []
    for name, make in figures.items():
        try:
            figure = make()
        except ImportError as err:
            print(f"no plots: {err}", file=sys.stderr)
            return written
        plots.save_figure(figure, out / name)
        written.append(out / name)
    return written


@dataclass
class Evaluation:
    """A saved model measured on its dataset's test set.

    Attributes
    ----------
    net : TwoLayerNet
    dataset : str
    test_acc : float
    confusion : numpy.ndarray, shape (C, C)
    num_images : int
    note : str or None
        Said when the model file lacks its preprocessing (an older file), which was
        then fitted on the training set again.
    """

    net: TwoLayerNet
    dataset: str
    test_acc: float
    confusion: np.ndarray
    num_images: int
    note: str | None = None

    def save_plot(self, output_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``confusion.png``; return its path (none without matplotlib)."""
        names = mnist.DATASETS[self.dataset].class_names
        return _plots(Path(output_dir), None, None, self.confusion, names)


def evaluate(
    model: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    backend: str | ModuleType | Backend = "numpy",
    device: Any = None,
    dtype: DType | None = None,
) -> Evaluation:
    """Measure a model file on the test set of the dataset it was trained on.

    Needs only the file and the test images: the model carries its preprocessing.
    The test files must be that dataset's (checked by their SHA-256).

    Raises
    ------
    xpnet.errors.ModelFileError
        If the file is not a valid model, or names an unknown dataset.
    xpnet.errors.DataError
        If the test files are missing or belong to another dataset.
    """
    net = TwoLayerNet.load(model, backend=backend, device=device, dtype=dtype)
    dataset = net.metadata.get("dataset", "mnist")
    if dataset not in mnist.DATASETS:
        raise ModelFileError(f"{model}: unknown dataset {dataset!r}")
    directory = mnist.data_dir(data_dir=data_dir, dataset=dataset)
    mnist.check_test_files(data_dir=directory, dataset=dataset)
    X_test, y_test = mnist.load_test(data_dir=directory, dataset=dataset)
    note = None
    preprocessing = net.preprocessing
    if preprocessing is None:  # a format-1 file: fit its preprocessing on the training set
        name = net.metadata.get("preprocessing", "subtract_mean_image")
        note = (
            f"{model} predates model files that carry their preprocessing; fitted "
            f"{name!r} on the {dataset} training set again"
        )
        X_train, *_ = mnist.read_data_sets(directory, dataset=dataset, download=False)
        preprocessing = fit_preprocessing(name, X_train)
    if preprocessing.input_size != net.sizes[0]:
        raise ModelFileError(
            f"{model}: its preprocessing makes {preprocessing.input_size} values per image, "
            f"its network takes {net.sizes[0]}"
        )
    C = net.sizes[2]
    if y_test.size and int(y_test.max()) >= C:
        raise DataError(
            f"the {dataset} test labels go up to {int(y_test.max())}, but {model} has only "
            f"{C} classes: it was not trained on these labels"
        )
    predicted = net.predict(preprocessing(X_test))
    return Evaluation(
        net,
        dataset,
        float(accuracy(np, y_test, predicted)),
        confusion_matrix(y_test, predicted, C),
        int(y_test.shape[0]),
        note,
    )


def check_output_dir(path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """Check that ``path`` takes files (creating it if needed): before any training is spent.

    With ``create=False`` a missing directory is not created (its nearest existing
    parent is checked instead): :func:`save_run` creates it with the first file, so a
    run that fails before (missing data, say) leaves no empty directory behind.

    Raises
    ------
    OSError
        If it is a file, lies under a file, or cannot be written to; the message
        says which.
    """
    return check_writable_directory(Path(path), create=create)
