"""``xpnet train``: train a recipe on MNIST and write the model, its history and plots."""

from __future__ import annotations

import argparse
import shlex
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
    default,
    flag,
    given,
    non_negative_int,
    positive_int,
)
from xpnet.errors import TrainingInterrupted
from xpnet.hyperparameters import rows
from xpnet.pipeline import (
    TRAIN_ROWS,
    PreparedData,
    RunPlan,
    check_output_dir,
    plan_resumed,
    plan_run,
    prepare_data,
    run_plan,
    save_run,
)
from xpnet.recipes import RECIPES, Recipe
from xpnet.training import CHECKPOINT_FILE, Checkpoint, compiled_runner_kind, read_checkpoint


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default=default("lab"),
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
        help="where model.npz, history.json, the plots and checkpoint.npz go (created with "
        "the first file; default: xpnet-output, or the --resume directory)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --output-dir (without it, a directory that holds a run's "
        "files is refused before any training)",
    )
    group = parser.add_argument_group("checkpoints")
    group.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="write checkpoint.npz into the output directory every N epochs, at the end, "
        "and when the run is stopped (Ctrl-C or SIGTERM stop it after the current step); "
        "0: only then" + DEFAULT,
    )
    group.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run whose checkpoint.npz is in DIR, exactly as if it had never "
        "stopped, with its recipe, seed, backend, dtype and training rows (options left "
        "out take the checkpoint's; options given must be its; --device where it was not "
        "the default), writing into DIR; --epochs N or --num-iters N trains it longer",
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
    group.add_argument("--seed", type=int, default=default(0), help="random seed" + DEFAULT)


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
    resume = _resumed(args)
    plan = plan_of(args) if resume is None else resumed_plan_of(args, resume)
    output_dir = args.output_dir or args.resume or Path("xpnet-output")
    if resume is not None and Path(output_dir).resolve() != Path(args.resume).resolve():
        raise ValueError(
            f"--resume {args.resume} writes the run into that directory; leave out "
            f"--output-dir {args.output_dir}, or copy the directory there first"
        )
    # before any training is spent
    out = check_output_dir(output_dir, create=False, overwrite=args.overwrite or bool(resume))
    data = prepare_data(plan.recipe.preprocessing, dataset=plan.dataset, data_dir=args.data_dir)
    train_size = args.train_size if resume is None else \
        args.train_size or _recorded_rows(resume)  # fmt: skip
    data = data.first(train_size)
    if getattr(args, "epochs", None) is not None and data.X_train.shape[0] != TRAIN_ROWS:
        plan = plan_of(args, data) if resume is None else resumed_plan_of(args, resume, data)
    if resume is not None:  # the settings before any training (the data, as it starts)
        resume.check_resumable(plan.settings, data.X_train.shape[0])
    backend, D, H, C = plan.settings.compute.resolved, *plan.settings.sizes
    kind = compiled_runner_kind(backend)
    recipe = plan.recipe
    print(
        f"training {D}-{H}-{C} on {plan.dataset} ({data.X_train.shape[0]:,} images) with "
        f"{backend} {plan.settings.compute.dtype}, "
        f"{kind.name if kind is not None else 'eager loop'}, "
        f"{_threads_shown(plan.settings.thread_count(), backend)}, "
        + (f"recipe {args.recipe}" if resume is None else "the checkpoint's recipe")
        + (f"; resuming at iteration {resume.iterations:,} of {recipe.num_iters:,}"
           if resume is not None else ""),
        flush=True,
    )  # fmt: skip
    bar = TrainingProgress(recipe.num_iters, initial=resume.iterations if resume else 0)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # divergence is reported, not warned
            warnings.filterwarnings("default", "could not write the checkpoint")
            result = run_plan(plan, data=data, progress=bar, checkpoint=out / CHECKPOINT_FILE,
                              checkpoint_every=args.checkpoint_every,
                              resume=resume)  # fmt: skip
    except TrainingInterrupted as stop:
        bar.close()
        if getattr(stop, "result", None) is None:
            raise
        save_run(stop.result, out, overwrite=True)
        print(
            f"interrupted ({stop.signal.name}) after {stop.iterations:,} of "
            f"{recipe.num_iters:,} iterations; saved the model trained so far to "
            f"{out / 'model.npz'}"
            + (f"; its last checkpoint is {stop.checkpoint}; go on with: xpnet train "
               f"--resume {shlex.quote(str(out))}" if stop.checkpoint is not None else "")
        )  # fmt: skip
        return 128 + stop.signal.value
    finally:
        bar.close()
    try:
        # saved before anything more is printed
        written = save_run(result, out, overwrite=True)
    except OSError:  # the directory went read-only or full: the measurements are still told
        _print_accuracies(result.val_acc, result.test_acc)
        raise
    _print_accuracies(result.val_acc, result.test_acc)
    if "stopped_epoch" in (record := result.net.last_training or {}):
        print(_stopping_line(record), flush=True)
    if (out / CHECKPOINT_FILE).is_file():  # written by the run (unless the disk was full)
        written.append(out / CHECKPOINT_FILE)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _resumed(args: argparse.Namespace) -> Checkpoint | None:
    """The checkpoint ``--resume DIR`` names, read and checked (None without it)."""
    if args.resume is None:
        return None
    return read_checkpoint(args.resume / CHECKPOINT_FILE)


def resumed_plan_of(
    args: argparse.Namespace, checkpoint: Checkpoint, data: PreparedData | None = None
) -> RunPlan:
    """The run ``--resume`` continues: the checkpoint's, with the options given on the
    command line (resuming refuses those that differ from the checkpoint's)."""
    overrides = {row.name: getattr(args, row.name) for row in rows(Recipe) if row.name in args}
    typed = {name: getattr(args, name) for name in ("backend", "dtype", "dataset", "seed",
             "threads", "device") if given(getattr(args, name))}  # fmt: skip
    if given(args.recipe):
        raise ValueError(
            "--resume takes the recipe the checkpoint records; leave out --recipe (give "
            "--epochs N to train longer)"
        )
    return plan_resumed(checkpoint, data=data, epochs=getattr(args, "epochs", None),
                        **typed, **overrides)  # fmt: skip


def _recorded_rows(checkpoint: Checkpoint) -> int | None:
    """The training rows the checkpoint's run trained on."""
    rows = checkpoint.settings.get("num_train")
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


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
