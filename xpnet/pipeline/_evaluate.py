"""A saved model measured on its dataset's test set: :func:`evaluate`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from xpnet import _checks
from xpnet._typing import Device, DType
from xpnet.backend import Backend
from xpnet.data import mnist
from xpnet.data.datasets import TEST_IMAGES, TEST_LABELS
from xpnet.errors import DataError, ModelFileError
from xpnet.metrics import accuracy, confusion_matrix
from xpnet.neural_net import TwoLayerNet
from xpnet.pipeline._outputs import save_plots
from xpnet.pipeline._run import predict_on_threads

__all__ = ["Evaluation", "evaluate"]


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
    """

    net: TwoLayerNet
    dataset: str
    test_acc: float
    confusion: np.ndarray
    num_images: int

    def save_plot(self, output_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``confusion.png``; return its path (none without matplotlib)."""
        names = mnist.DATASETS[self.dataset].class_names
        return save_plots(Path(output_dir), self.confusion, names)


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
    runs on ``threads`` CPU threads; None: the count measured fastest for its size
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
        threads = _checks.positive_int("threads", threads)
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
    predicted = predict_on_threads(net, preprocessing(X_test), threads)
    return Evaluation(
        net,
        dataset,
        float(accuracy(np, y_test, predicted)),
        confusion_matrix(y_test, predicted, C),
        int(y_test.shape[0]),
    )
