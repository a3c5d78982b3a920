"""A run planned again from its checkpoint, to resume it (``xpnet train --resume DIR``)."""

from __future__ import annotations

from typing import Any

from xpnet.errors import ModelFileError
from xpnet.pipeline._data import PreparedData
from xpnet.pipeline._plan import RunPlan, plan_run
from xpnet.recipes import Recipe
from xpnet.training import Checkpoint

__all__ = ["plan_resumed"]

#: What a run's plan takes besides the recipe's fields, as a checkpoint records it.
_COMPUTE = ("backend", "device", "dtype", "compile", "threads", "dataset", "seed")


def plan_resumed(
    checkpoint: Checkpoint,
    *,
    data: PreparedData | None = None,
    epochs: int | None = None,
    **changes: Any,  # Any: plan_run's arguments and recipe fields, of every type
) -> RunPlan:
    """The plan of the run a checkpoint holds, written by :func:`xpnet.pipeline.run`
    (or ``xpnet train``): its dataset, recipe, seed, backend, dtype, compile and threads,
    as recorded; the training rows are ``data``'s when given.

    Parameters
    ----------
    checkpoint : Checkpoint
        From :func:`xpnet.training.read_checkpoint`.
    data : PreparedData, optional
        The data, cut to the checkpoint's training rows (its ``num_train``).
    epochs : int, optional
        Train this many epochs in all instead of the run's length (``num_iters=`` too
        may be given), to train longer.
    **changes
        :func:`plan_run`'s arguments or recipe fields to give other values than the
        recorded ones; resuming then refuses those that change the run, naming them.

    Raises
    ------
    xpnet.errors.ModelFileError
        If the checkpoint records no pipeline run (one of ``TwoLayerNet.train``, which
        resumes with ``TwoLayerNet.train(..., resume=path)``).
    TypeError, ValueError, ImportError, RuntimeError
        As :func:`plan_run`.
    """
    metadata, settings = checkpoint.metadata, checkpoint.settings
    recipe, compute = metadata.get("recipe"), settings.get("compute")
    if not isinstance(recipe, dict) or not isinstance(compute, dict) or \
            not isinstance(metadata.get("dataset"), str):  # fmt: skip
        raise ModelFileError(
            f"{checkpoint.path}: the checkpoint of a TwoLayerNet.train call, which records "
            "no recipe or dataset; resume it with TwoLayerNet.train(..., resume=path)"
        )
    recorded: dict[str, Any] = {  # Any: the recorded values, checked by plan_run
        "backend": compute.get("backend"), "dtype": compute.get("dtype"), "device": None,
        "compile": settings.get("compile"), "threads": settings.get("threads"),
        "dataset": metadata["dataset"], "seed": metadata.get("seed"),
    }  # fmt: skip
    given = {name: value for name, value in changes.items() if name in _COMPUTE}
    fields = {name: value for name, value in changes.items() if name not in _COMPUTE}
    data_of = {
        "dataset": (metadata["dataset"], given),
        "preprocessing": (recipe["preprocessing"], fields),
    }
    checkpoint.refuse_differences([  # before any data is read for them
        f"{name} {asked[name]!r} (the checkpoint's: {old!r})"
        for name, (old, asked) in data_of.items() if name in asked and asked[name] != old
    ])  # fmt: skip
    try:  # what the file records, checked by itself: a bad value is the file's
        plan_run(Recipe(**recipe), **recorded, enable_float64=True, data=data)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{checkpoint.path}: its recorded run is not one xpnet runs "
                             f"({err}): corrupt") from None  # fmt: skip
    return plan_run(
        Recipe(**recipe), **{**recorded, **given}, enable_float64=True, data=data,
        epochs=epochs, **fields,
    )  # fmt: skip
