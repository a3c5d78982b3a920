"""A trained network as an ONNX model, traced from xpnet's own array-API code.

``ndonnx`` is an Array API library whose arrays record ONNX operations instead of
computing. :func:`export_onnx` hands its placeholders to the network's
:meth:`~xpnet.preprocess.Preprocessing.apply`, :func:`~xpnet.functional.forward` and
:func:`~xpnet.functional.softmax`, the lines that run on NumPy, PyTorch and JAX, and
writes the graph they build. The model runs wherever ONNX Runtime does::

    images      float32 (N, 28, 28, 1)   raw pixel values 0..255, N any
    labels      int64   (N,)             the predicted classes
    probabilities float32 (N, C)         the softmax of the scores

Needs ndonnx, onnx and, to run the model, onnxruntime (``pip install ndonnx onnx
onnxruntime``; from a checkout, ``pip install ".[onnx]"``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from xpnet import __version__
from xpnet._atomic import atomic_write
from xpnet._typing import Namespace, map_params
from xpnet.backend import to_numpy
from xpnet.functional import forward, softmax
from xpnet.neural_net import TwoLayerNet

if TYPE_CHECKING:
    import onnx

__all__ = ["IMAGE_SHAPE", "export_onnx"]

#: The shape of one input image, as :func:`xpnet.data.read_data_sets` gives it.
IMAGE_SHAPE = (28, 28, 1)


def export_onnx(
    model: TwoLayerNet | str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write a network as an ONNX model that takes raw images.

    Parameters
    ----------
    model : TwoLayerNet or path-like
        A network with ``preprocessing`` set, or a model file
        written by :meth:`~xpnet.TwoLayerNet.save` (``xpnet train``'s ``model.npz``).
    path : path-like, optional
        The ``.onnx`` file to write, replaced whole or left as it was. Default: the
        model file's path with the suffix ``.onnx``; required when ``model`` is a network.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the network has no preprocessing (the model could not take raw pixels), its
        inputs are not 28x28 images, ``path`` is missing for a network, or ``path`` is
        the model file itself.
    xpnet.errors.ModelFileError
        If ``model`` is a path but not a valid model file.
    ImportError
        If ndonnx or onnx is not installed.

    Warns
    -----
    UserWarning
        For a float64 network: ONNX Runtime computes in float32, so the model holds
        the parameters rounded to float32 (probabilities agree to about 1e-5).

    Notes
    -----
    The graph has one input, ``images`` (float32, shape ``(N, 28, 28, 1)``, ``N``
    dynamic), and two outputs, ``labels`` (int64, ``(N,)``) and ``probabilities``
    (float32, ``(N, C)``). It passes ``onnx.checker`` before it is written.
    """
    ndx, onnx = _import_onnx_libraries()
    if isinstance(model, TwoLayerNet):
        net = model
        if path is None:
            raise ValueError("give the .onnx file to write (path=) when exporting a network")
    else:
        path = Path(model).with_suffix(".onnx") if path is None else path
        if Path(path).resolve() == Path(model).resolve():
            raise ValueError(f"the ONNX file {path} would replace the model file; choose another")
        net = TwoLayerNet.load(model)
    preprocessing = net.preprocessing
    if preprocessing is None:
        raise ValueError(
            "the model has no preprocessing saved with it, so an exported model could not "
            "take raw pixels; train it with `xpnet train` or xpnet.pipeline.run, or set "
            "net.preprocessing (xpnet.preprocess.fit_preprocessing) before exporting"
        )
    if preprocessing.input_size != int(np.prod(IMAGE_SHAPE)):
        raise ValueError(
            f"the model takes {preprocessing.input_size} values per image; ONNX export "
            f"supports images of shape {IMAGE_SHAPE} only"
        )
    if "float64" in str(net.dtype):
        warnings.warn(
            "the model computes in float64; it is exported in float32 (its parameters "
            "rounded), as ONNX Runtime runs it: probabilities agree to about 1e-5",
            UserWarning,
            stacklevel=2,
        )
    graph = _trace(ndx, net)
    graph.producer_name, graph.producer_version = "xpnet", __version__
    onnx.checker.check_model(graph, full_check=True)
    path = Path(path)
    with atomic_write(path) as f:
        f.write(graph.SerializeToString())
    return path


def _trace(ndx: Namespace, net: TwoLayerNet) -> onnx.ModelProto:
    """Run the preprocessing and forward pass on ndonnx placeholders; the ONNX model."""
    assert net.preprocessing is not None  # checked by the caller
    params = map_params(lambda value: ndx.asarray(to_numpy(value).astype(np.float32)), net.params)
    images = ndx.argument(shape=("N", *IMAGE_SHAPE), dtype=ndx.float32)
    rows = net.preprocessing.apply(ndx, images)
    _, scores = forward(ndx, params, rows)
    outputs = {
        "labels": ndx.astype(ndx.argmax(scores, axis=1), ndx.int64),
        "probabilities": softmax(ndx, scores),
    }
    graph: onnx.ModelProto = ndx.build({"images": images}, outputs)
    _name_output_shapes(graph, num_classes=net.sizes[2])
    return graph


def _name_output_shapes(graph: onnx.ModelProto, num_classes: int) -> None:
    """Write the outputs' shapes, ``(N,)`` and ``(N, C)``, where the trace left them unnamed."""
    shapes: dict[str, list[str | int]] = {"labels": ["N"], "probabilities": ["N", num_classes]}
    for output in graph.graph.output:
        dims = output.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[output.name], strict=True):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size


def _import_onnx_libraries() -> tuple[Namespace, ModuleType]:
    """ndonnx (an Array API namespace) and onnx."""
    try:
        import ndonnx
        import onnx
    except ImportError as err:
        raise ImportError(
            f"ONNX export needs ndonnx and onnx ({err}); install them with: "
            "pip install ndonnx onnx onnxruntime"
        ) from None
    return ndonnx, onnx
