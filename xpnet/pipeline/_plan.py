"""A run planned: a recipe checked for one dataset and compute before anything is read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from xpnet import _checks
from xpnet._typing import Compile, Device, DType
from xpnet.backend import Backend
from xpnet.data import mnist
from xpnet.pipeline._data import TRAIN_ROWS, PreparedData
from xpnet.recipes import RECIPES, Recipe
from xpnet.training import ComputeSettings, TrainSettings, num_iters_for

__all__ = ["RunPlan", "plan_run", "recipe_with"]


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
    # Any: each override is of its own field's type (a TypedDict of them would spell the
    # table twice), passed on to dataclasses.replace; Recipe.settings checks them.
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
        recipe = recipe_with(self.recipe, **overrides)  # Any: as recipe_with's
        s = self.settings
        settings = recipe.settings(input_size=s.input_size, output_size=s.output_size,
                                   seed=s.seed, compile=s.compile, threads=s.threads,
                                   compute=compute or s.compute)  # fmt: skip
        return RunPlan(recipe, settings, self.dataset)


def plan_run(
    recipe: str | Recipe = "lab",
    *,
    dataset: str = "mnist",
    backend: str | ModuleType | Backend = "numpy",
    device: Device | None = None,
    dtype: DType = "float64",
    seed: int = 0,
    compile: Compile = "auto",
    threads: int | None = None,
    enable_float64: bool = False,
    data: PreparedData | None = None,
    epochs: int | None = None,
    **overrides: Any,  # Any: recipe fields of every type, as recipe_with's
) -> RunPlan:
    """Check everything a run needs before anything is read, written or trained.

    Parameters are those of :func:`xpnet.pipeline.run`; ``enable_float64`` is
    :class:`xpnet.training.ComputeSettings`'s. The network's sizes (and the training
    rows, for ``epochs``) come from ``data`` when given, else from the dataset (28x28
    images, its classes, :data:`TRAIN_ROWS` training rows).

    Raises
    ------
    TypeError, ValueError
        For an unknown recipe, field or dataset, settings that cannot run, or ``data``
        prepared with another preprocessing than the recipe's. A bad value is told
        before a backend or device that is missing.
    ImportError, RuntimeError
        For a backend that is not installed, or a GPU this machine lacks.
    """
    # Each value first, as plain Python values: a bad size is told before a missing GPU.
    chosen = recipe_with(recipe, **overrides).checked()
    ds = mnist.DATASETS[_checks.choice("dataset", dataset, tuple(mnist.DATASETS))]
    if data is not None:
        data.check_preprocessing(chosen.preprocessing)
        sizes, rows = (data.X_train.shape[1], data.num_classes), data.X_train.shape[0]
    else:
        sizes = mnist.IMAGE_SHAPE[0] * mnist.IMAGE_SHAPE[1], len(ds.class_names)
        rows = TRAIN_ROWS
    if epochs is not None:
        num_iters = num_iters_for(overrides.get("num_iters"), epochs, rows, chosen.batch_size)
        chosen = dataclasses.replace(chosen, num_iters=num_iters)
    compute = ComputeSettings(backend, device, dtype, enable_float64=enable_float64)
    settings = chosen.settings(input_size=sizes[0], output_size=sizes[1], seed=seed,
                               compile=compile, threads=threads, compute=compute)  # fmt: skip
    return RunPlan(chosen, settings, dataset)
