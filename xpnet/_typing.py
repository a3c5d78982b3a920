"""The types xpnet's signatures share: arrays, namespaces, parameters, and the named choices.

Arrays, devices and dtypes belong to whichever library computes, and those libraries
share no static type: :data:`Array`, :data:`ArrayLike`, :data:`Device` and
:data:`ArrayDType` are ``Any`` under names that say what a value is. :data:`JSON` is
``Any`` too, as ``json.loads`` returns it. Everything else here is checked.

Each choice is a ``Literal`` and its allowed values are read from it with
``typing.get_args``, so a name is spelled in one place: the type checker, the
validation in :mod:`xpnet.training` and the command line's ``choices`` all use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Literal, TypedDict, get_args

__all__ = [
    "AUGMENTATION_NAMES",
    "DTYPES",
    "INITS",
    "JSON",
    "OPTIMIZERS",
    "PARAM_NAMES",
    "SCHEDULES",
    "Array",
    "ArrayDType",
    "ArrayLike",
    "AugmentationName",
    "Compile",
    "DType",
    "Device",
    "Init",
    "JSONObject",
    "Namespace",
    "OptimizerName",
    "ParamName",
    "Params",
    "Schedule",
    "map_params",
    "params_from",
]

#: An array of any Array API library (NumPy, CuPy, torch, JAX, array-api-strict).
#: The libraries share no static type, so this says what a value is, not what checks it.
Array = Any
#: Data as a caller gives it, before :mod:`xpnet._checks` converts it: an array of any
#: library, a NumPy array or scalar, or nested sequences of numbers.
ArrayLike = Any
#: An Array API namespace: what ``array_api_compat.array_namespace`` returns.
Namespace = ModuleType
#: A library's own device object (``"cpu"`` for NumPy, a ``torch.device``, a JAX
#: ``Device``, a CuPy ``Device``), or a user's spelling of one that
#: :func:`xpnet.resolve_backend` turns into it (``"cuda:1"``, ``1``, ``"gpu:0"``): the
#: libraries share no type for it either.
Device = Any
#: A library's own dtype object (``np.float32``, ``torch.float32``, ``xp.int32``):
#: what ``xp.float32`` is, as opposed to the name a :data:`DType` spells.
ArrayDType = Any
#: A JSON value: None, a bool, int, float or str, or a list or object of JSON values.
#: Any, so that a reader who knows a field's type uses it as that (after checking it
#: where it comes from a file).
JSON = Any
#: A JSON object (a model file's metadata, a training record).
JSONObject = dict[str, JSON]

ParamName = Literal["W1", "b1", "W2", "b2"]
#: The parameters, in the order of the forward pass.
PARAM_NAMES: tuple[ParamName, ...] = get_args(ParamName)


class Params(TypedDict):
    """The network's parameters: arrays of one library on one device.

    ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,). Gradients have the same keys
    and shapes.
    """

    W1: Array
    b1: Array
    W2: Array
    b2: Array


def map_params(function: Callable[[Array], Array], params: Params) -> Params:
    """``{name: function(params[name])}`` for each parameter (or gradient), as :class:`Params`."""
    return Params(
        W1=function(params["W1"]),
        b1=function(params["b1"]),
        W2=function(params["W2"]),
        b2=function(params["b2"]),
    )


def params_from(arrays: Mapping[str, Array]) -> Params:
    """The four parameters of ``arrays`` (a model file's, say), as :class:`Params`."""
    return Params(W1=arrays["W1"], b1=arrays["b1"], W2=arrays["W2"], b2=arrays["b2"])


DType = Literal["float32", "float64"]
#: The floating dtypes a network computes in.
DTYPES: tuple[DType, ...] = get_args(DType)

Init = Literal["gaussian", "he"]
#: Weight initialisations: the lab's ``std * randn``, and He's ``randn * sqrt(2 / fan_in)``.
INITS: tuple[Init, ...] = get_args(Init)

OptimizerName = Literal["sgd", "adam", "adamw"]
#: Optimisers by ``train(optimizer=...)`` name.
OPTIMIZERS: tuple[OptimizerName, ...] = get_args(OptimizerName)

Schedule = Literal["step", "cosine"]
#: Learning-rate schedules: the lab's decay once per epoch, and cosine annealing.
SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)

#: ``compile=``: "auto" picks the fastest correct path, False forces the eager loop,
#: True demands a compiled one.
Compile = Literal["auto"] | bool

AugmentationName = Literal["none", "affine", "elastic", "affine+elastic"]
#: Distortions by recipe name (:data:`xpnet.augment.AUGMENTATIONS`).
AUGMENTATION_NAMES: tuple[AugmentationName, ...] = get_args(AugmentationName)
