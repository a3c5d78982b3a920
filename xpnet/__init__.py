"""xpnet: the lab's two-layer neural network, written once against the Array API standard.

The same code runs on NumPy (CPU), CuPy (NVIDIA GPUs), PyTorch, JAX and
array-api-strict::

    from xpnet import TwoLayerNet
    net = TwoLayerNet(784, 175, 10, backend="cupy")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xpnet._version import __version__
from xpnet.backend import SUPPORTED_BACKENDS, Backend, resolve_backend, to_numpy
from xpnet.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

if TYPE_CHECKING:
    from xpnet.neural_net import TwoLayerNet

__all__ = [
    "SUPPORTED_BACKENDS",
    "Backend",
    "TwoLayerNet",
    "__version__",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "rel_error",
    "resolve_backend",
    "to_numpy",
]


def __getattr__(name: str) -> Any:
    """``xpnet.TwoLayerNet``, imported on first use: importing a subpackage (``import
    xpnet.training``) runs this file first, and need not load the model with it."""
    if name == "TwoLayerNet":
        return importlib.import_module("xpnet.neural_net").TwoLayerNet
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")
