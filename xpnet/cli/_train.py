"""``xpnet train``: train a recipe on MNIST and write the model, its history and plots."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from xpnet._progress import TrainingProgress
from xpnet.backend import Backend, runs_on_host_threads
from xpnet.cli._options import (
    DEFAULT,
    Command,
    add_compute_options,
    add_data_options,
    flag,
    positive_int,
)
from xpnet.errors import TrainingInterrupted
from xpnet.hyperparameters import rows
from xpnet.pipeline import (
    TRAIN_ROWS,
    PreparedData,
    RunPlan,
    check_output_dir,
    plan_run,
    prepare_data,
    run_plan,
    save_run,
)
from xpnet.recipes import RECIPES, Recipe
from xpnet.training import compiled_runner_kind


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="lab",
        help="lab: the handout's best settings; fast: scaled inputs, He init, momentum and "
        "a cosine schedule over shuffled epochs; best: a wide layer, dropout, AdamW; "
        "best-augmented: best on distorted digits, longer" + DEFAULT,
    )
    _add_recipe_options(parser)
    add_compute_options(parser, threads=True)
    add_data_options(parser)
    parser.add_argument(
        "--train-size",
        type=positive_int,
        metavar="N",
        help="train on the first N training images only, as xpnet tune's --train-size (the "
        "preprocessing is fitted on them all; default: all)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("xpnet-output"),
        help="where model.npz, history.json and the plots go (created with the first file)"
        + DEFAULT,
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --output-dir (without it, a directory that holds a run's "
        "files is refused before any training)",
    )


class _OptionKeywords(TypedDict):
    """The keywords of ``add_argument`` that every recipe option has."""

    default: str
    help: str


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One option per recipe field, from the hyperparameters' table; default: the recipe's."""
    group = parser.add_argument_group("hyperparameters (default: the recipe's)")
    length = group.add_mutually_exclusive_group()
    for row in rows(Recipe):
        shown = ", ".join(f"{name} {_shown(row.name, recipe)}" for name, recipe in RECIPES.items())
        options = _OptionKeywords(default=argparse.SUPPRESS, help=f"{row.help}: {shown}")
        target = length if row.name == "num_iters" else group
        if row.kind is bool:
            target.add_argument(flag(row.name), action=argparse.BooleanOptionalAction, **options)
        elif row.choices:
            target.add_argument(flag(row.name), choices=row.choices, **options)
        else:
            target.add_argument(flag(row.name), type=row.kind, **options)
        if row.name == "num_iters":
            length.add_argument("--epochs", type=positive_int, default=argparse.SUPPRESS,
                                metavar="N", help=_epochs_help())  # fmt: skip
    group.add_argument("--seed", type=int, default=0, help="random seed" + DEFAULT)


def _epochs_help() -> str:
    by_size: dict[int, list[str]] = {}
    for name, recipe in RECIPES.items():
        by_size.setdefault(recipe.batch_size, []).append(name)
    sizes = [f"{TRAIN_ROWS // size} at batch size {size} ({', '.join(names)})"
             for size, names in by_size.items()]  # fmt: skip
    return (
        f"train N epochs instead of --num-iters: N * ({TRAIN_ROWS:,} training images // "
        f"batch size) iterations; an epoch is {'; '.join(sizes)}"
    )


def _shown(field: str, recipe: Recipe) -> str:
    """A recipe's value of a field, as ``-h`` shows it."""
    if field == "std" and recipe.init == "he":
        return "He"
    value = getattr(recipe, field)
    if field == "num_iters":
        epochs = value / (TRAIN_ROWS // recipe.batch_size)
        return f"{value} ({epochs:.3g} epochs)"
    return str(value)


def plan_of(args: argparse.Namespace, data: PreparedData | None = None) -> RunPlan:
    """The run that ``xpnet train``'s options describe (its epochs counted in ``data``'s
    training rows, where given)."""
    overrides = {row.name: getattr(args, row.name) for row in rows(Recipe) if row.name in args}
    return plan_run(
        args.recipe, dataset=args.dataset, backend=args.backend, device=args.device,
        dtype=args.dtype, seed=args.seed, threads=args.threads, enable_float64=True,
        data=data, epochs=getattr(args, "epochs", None), **overrides,
    )  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    # Everything is checked before anything is created, read or printed; the output
    # directory is made with the first file, so a failed run leaves none behind.
    plan = plan_of(args)
    # before any training is spent
    out = check_output_dir(args.output_dir, create=False, overwrite=args.overwrite)
    data = prepare_data(plan.recipe.preprocessing, dataset=args.dataset, data_dir=args.data_dir)
    data = data.first(args.train_size)
    if getattr(args, "epochs", None) is not None and data.X_train.shape[0] != TRAIN_ROWS:
        plan = plan_of(args, data)  # epochs of these files
    backend, D, H, C = plan.settings.compute.resolved, *plan.settings.sizes
    kind = compiled_runner_kind(backend)
    print(
        f"training {D}-{H}-{C} on {args.dataset} ({data.X_train.shape[0]:,} images) with "
        f"{backend} {args.dtype}, {kind.name if kind is not None else 'eager loop'}, "
        f"{_threads_shown(plan.settings.thread_count(), backend)}, recipe {args.recipe}",
        flush=True,
    )
    recipe = plan.recipe
    bar = TrainingProgress(recipe.num_iters)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # divergence is reported, not warned
            result = run_plan(plan, data=data, progress=bar)
    except TrainingInterrupted as stop:
        bar.close()
        if getattr(stop, "result", None) is None:
            raise
        save_run(stop.result, out, overwrite=args.overwrite)
        print(
            f"interrupted after {stop.iterations} of {recipe.num_iters} iterations; saved "
            f"the model trained so far to {out / 'model.npz'}"
        )
        return 130
    finally:
        bar.close()
    try:
        # saved before anything more is printed
        written = save_run(result, out, overwrite=args.overwrite)
    except OSError:  # the directory went read-only or full: the measurements are still told
        _print_accuracies(result.val_acc, result.test_acc)
        raise
    _print_accuracies(result.val_acc, result.test_acc)
    if "stopped_epoch" in (record := result.net.last_training or {}):
        print(_stopping_line(record), flush=True)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _threads_shown(threads: int, backend: Backend) -> str:
    """How many CPU threads run, as the first line says it: JAX's XLA keeps its own pool,
    and a GPU computes the products itself."""
    shown = f"{threads} thread{'s' if threads > 1 else ''}"
    if runs_on_host_threads(backend):
        return shown
    return "XLA's own threads" if backend.name == "jax" else f"{shown} on the host"


def _stopping_line(record: Mapping[str, Any]) -> str:
    """Where early stopping stopped the run (or that it ran all) and whose parameters it kept."""
    stopped, kept = record["stopped_epoch"], record["kept_epoch"]
    ran = f"stopped early after epoch {stopped}" if stopped is not None else \
        f"ran all its epochs ({record['epochs']} whole)"  # fmt: skip
    return f"early stopping: {ran}; kept the parameters of " + (
        f"epoch {kept}, the best validation accuracy" if kept is not None else "the last step"
    )


def _print_accuracies(val_acc: float | None, test_acc: float | None) -> None:
    print(f"validation accuracy: {val_acc:.4f}")
    print(f"test accuracy:       {test_acc:.4f}", flush=True)


COMMAND = Command("train", "train on MNIST and write model, history, plots", _add_arguments, _train)
