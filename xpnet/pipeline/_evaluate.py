"""A saved model measured on its dataset's test set: :func:`evaluate`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from xpnet import _checks, plots
from xpnet._atomic import check_writable_directory
from xpnet._typing import Device, DType
from xpnet._wording import setting
from xpnet.backend import Backend, to_numpy
from xpnet.data import mnist
from xpnet.data.datasets import TEST_IMAGES, TEST_LABELS
from xpnet.errors import DataError, ModelFileError
from xpnet.metrics import accuracy, classification_report, confusion_matrix
from xpnet.neural_net import TwoLayerNet
from xpnet.pipeline._outputs import (
    EVALUATION_PICTURES,
    RUN_FILES,
    refuse_another_run,
    write_figures,
)
from xpnet.pipeline._run import predict_on_threads

__all__ = ["EVALUATION_FILES", "Evaluation", "check_plots_dir", "evaluate"]


#: The files :meth:`Evaluation.save_plots` writes.
EVALUATION_FILES = ("confusion.png", "misclassified.png")


@dataclass
class Evaluation:
    """A saved model measured on its dataset's test set.

    Attributes
    ----------
    net : TwoLayerNet
    model : pathlib.Path
        The model file.
    dataset : str
    test_acc : float
    confusion : numpy.ndarray, shape (C, C)
    num_images : int
    images : numpy.ndarray of float32, shape (N, 28, 28, 1)
        The test images, raw.
    labels, predicted : numpy.ndarray of int64, shape (N,)
        Their true and predicted classes.
    """

    net: TwoLayerNet
    model: Path
    dataset: str
    test_acc: float
    confusion: np.ndarray
    num_images: int
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)

    def report(self, digits: int = 4) -> str:
        """Each class's precision, recall, F1 and support, the accuracy and the averages,
        as ``sklearn.metrics.classification_report`` lays them out
        (:func:`xpnet.metrics.classification_report`)."""
        names = mnist.DATASETS[self.dataset].class_names
        return classification_report(self.labels, self.predicted, names, digits=digits)

    def save_plots(
        self, output_dir: str | os.PathLike[str] | None = None, *, overwrite: bool = False
    ) -> list[Path]:
        """Write ``confusion.png`` and ``misclassified.png`` (the misclassified test
        images, each with its true and predicted class) into ``output_dir`` (default:
        the model's directory); return their paths (none without matplotlib).

        Raises
        ------
        FileExistsError, OSError
            As :func:`check_plots_dir`, or if a file cannot be written.
        """
        out = check_plots_dir(output_dir, self.model, overwrite=overwrite)
        names = mnist.DATASETS[self.dataset].class_names
        return write_figures(out, {
            "confusion.png": lambda: plots.plot_confusion(self.confusion, names),
            "misclassified.png": lambda: plots.plot_misclassified(
                self.images, self.labels, self.predicted, names
            ),
        })  # fmt: skip


def check_plots_dir(
    output_dir: str | os.PathLike[str] | None,
    model: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    create: bool = True,
) -> Path:
    """The directory an evaluation of ``model`` writes its plots into, checked.

    None, or the model's own directory, is where its plots belong: they are replaced,
    and a directory that cannot take them costs only them (the error comes as each
    is written). Another directory must take the files (:func:`check_output_dir`'s
    checks, ``create`` as there), and, unless ``overwrite``, hold no run's files and
    no evaluation's.

    Raises
    ------
    FileExistsError
        If another directory holds another run and ``overwrite`` is False.
    OSError
        If another directory cannot take the files.
    """
    _checks.flag("overwrite", overwrite)
    own = Path(model).parent
    out = own if output_dir is None else Path(output_dir)
    if out.is_dir() and own.is_dir() and out.samefile(own):
        return out
    checked = check_writable_directory(out, create=create, files=EVALUATION_FILES)
    if not overwrite:
        refuse_another_run(checked, (*RUN_FILES, *EVALUATION_PICTURES))
    return checked


def evaluate(
    model: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    backend: str | ModuleType | Backend = "numpy",
    device: Device | None = None,
    dtype: DType | None = None,
    threads: int | None = None,
) -> Evaluation:
    """Measure a model file on the test set of the dataset it was trained on.

    Needs only the file and the test images: the model carries its preprocessing.
    The test files must be that dataset's (checked by their SHA-256). The prediction
    runs on ``threads`` CPU threads; None: the count chosen for its size
    (:data:`xpnet.backend.THREADS_BY_SIZE`).

    Raises
    ------
    TypeError, ValueError
        If ``threads`` is not None or a positive integer.
    xpnet.errors.ModelFileError
        If the file is not a valid model, names an unknown dataset, or holds no
        preprocessing (its network was saved without one).
    xpnet.errors.DataError
        If the test files are missing or belong to another dataset.
    """
    if threads is not None:
        threads = _checks.positive_int(setting("threads"), threads)
    net = TwoLayerNet.load(model, backend=backend, device=device, dtype=dtype)
    dataset = net.metadata.get("dataset", "mnist")
    if dataset not in mnist.DATASETS:
        raise ModelFileError(f"{model}: unknown dataset {dataset!r}")
    preprocessing = net.preprocessing
    if preprocessing is None:
        raise ModelFileError(
            f"{model} holds no preprocessing (its network was saved without one), so test "
            "images cannot be made into its rows; train it with `xpnet train` or "
            "xpnet.pipeline.run, or set net.preprocessing "
            "(xpnet.preprocess.fit_preprocessing) before saving"
        )
    if preprocessing.input_size != net.sizes[0]:
        raise ModelFileError(
            f"{model}: its preprocessing makes {preprocessing.input_size} values per image, "
            f"its network takes {net.sizes[0]}"
        )
    directory = mnist.data_dir(data_dir=data_dir, dataset=dataset)
    mnist.check_files(data_dir=directory, dataset=dataset,
                      names=(TEST_IMAGES, TEST_LABELS))  # fmt: skip
    X_test, y_test = mnist.load_test(data_dir=directory, dataset=dataset)
    C = net.sizes[2]
    if y_test.size and int(y_test.max()) >= C:
        raise DataError(
            f"the {dataset} test labels go up to {int(y_test.max())}, but {model} has only "
            f"{C} classes: it was not trained on these labels"
        )
    predicted = to_numpy(predict_on_threads(net, preprocessing(X_test), threads))
    return Evaluation(
        net,
        Path(model),
        dataset,
        float(accuracy(np, y_test, predicted)),
        confusion_matrix(y_test, predicted, C),
        int(y_test.shape[0]),
        X_test,
        y_test,
        predicted.astype(np.int64),
    )
