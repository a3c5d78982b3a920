"""``xpnet tune``: search the hyperparameters with Optuna, the trials on Dask workers.

Optuna and Dask are imported when the command runs, not with the command line, so that
``xpnet -h`` stays quick and the other commands work without them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from xpnet.cli._options import (
    DEFAULT,
    Command,
    add_compute_options,
    add_data_options,
    flag,
    positive_int,
)
from xpnet.errors import TuneInterrupted
from xpnet.hyperparameters import rows
from xpnet.pipeline import recipe_with
from xpnet.recipes import RECIPES

#: The hyperparameters of early stopping, the same for every trial and the retraining.
STOPPING = ("early_stopping", "patience", "restore_best")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    budget = parser.add_argument_group("budget")
    budget.add_argument(
        "--trials", type=int, default=20, help="finished trials the study should hold" + DEFAULT
    )
    budget.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    budget.add_argument(
        "--train-size", type=int, help="train on the first N training images only (quick searches)"
    )
    space = parser.add_argument_group(
        "search space (default: around the recipe's values; LOW == HIGH fixes a knob)"
    )
    for row in rows():  # a range (or choices) for each hyperparameter the table searches
        if row.search is None:
            continue
        name, dest = flag(row.name), f"range_{row.name}"
        if row.search.scale == "choices":
            space.add_argument(name, type=row.kind, nargs="+", metavar=row.name.upper(), dest=dest,
                               help=f"the values of {row.name} to choose from")  # fmt: skip
        else:
            scale = "log scale" if row.search.scale == "log" else "linear"
            space.add_argument(name, type=row.kind, nargs=2, metavar=("LOW", "HIGH"), dest=dest,
                               help=f"the range of {row.name} ({scale})")  # fmt: skip
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="lab")
    stopping = parser.add_argument_group("every trial's early stopping (default: the recipe's)")
    for row in rows():
        if row.name in STOPPING and row.kind is bool:
            stopping.add_argument(flag(row.name), action=argparse.BooleanOptionalAction,
                                  default=argparse.SUPPRESS, help=row.help)  # fmt: skip
        elif row.name in STOPPING:
            stopping.add_argument(flag(row.name), type=row.kind, default=argparse.SUPPRESS,
                                  help=row.help)  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the sampler and every trial" + DEFAULT
    )
    add_compute_options(parser)
    add_data_options(parser)
    engines = parser.add_argument_group("engines")
    engines.add_argument(
        "--storage",
        help="an Optuna storage: an SQLite file, journal:FILE, or a PostgreSQL/MySQL URL "
        "(default: study.db in the output directory)",
    )
    engines.add_argument("--study-name", default="xpnet-tune")
    engines.add_argument(
        "--workers",
        type=positive_int,
        help="local Dask worker processes (default: the cores, or one per GPU)",
    )
    engines.add_argument(
        "--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786"
    )
    engines.add_argument(
        "--together", type=positive_int, default=1, metavar="K",
        help="trials each Dask task trains together, in one array program (each pruned "
        "alone; results as trained alone)" + DEFAULT,
    )  # fmt: skip
    parser.add_argument("--no-retrain", dest="retrain", action="store_false",
                        help="skip retraining the best settings and measuring them on the test "
                        "set (by default they are retrained, into best/)")  # fmt: skip
    parser.add_argument(
        "--output-dir", type=Path, default=Path("xpnet-tune"),
        help="where the study, trials.csv, the plots and the best model (best/) go" + DEFAULT,
    )  # fmt: skip


def _tune(args: argparse.Namespace) -> int:
    try:
        import distributed  # noqa: F401
        import optuna  # noqa: F401  (the engines, checked before any work)

        from xpnet.tune import tune
        from xpnet.tune._report import best_table
        from xpnet.tune._space import knob
    except ImportError as err:
        raise ImportError(
            f"xpnet tune needs Optuna and Dask ({err}); install them with: "
            "pip install optuna distributed"
        ) from None
    logging.getLogger("optuna").setLevel(logging.WARNING)
    # A lost cluster is told in one line (ClusterLost), not by Dask's reconnection logs.
    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    space = {row.name: knob(row, getattr(args, f"range_{row.name}")) for row in rows()
             if getattr(args, f"range_{row.name}", None) is not None}  # fmt: skip
    fixed = {name: getattr(args, name) for name in STOPPING if name in args}
    recipe = recipe_with(args.recipe, **fixed) if fixed else args.recipe
    source = f"Dask scheduler {args.scheduler}" if args.scheduler else "a local Dask cluster"
    line = _StatusLine(
        f"searching recipe {args.recipe} on {args.dataset} with {args.backend} {args.dtype}: "
        f"{{budget}}, on {source}; output in {args.output_dir}"
    )
    try:
        result = tune(
            trials=args.trials, timeout=args.timeout, space=space, recipe=recipe,
            dataset=args.dataset, data_dir=args.data_dir, backend=args.backend,
            device=args.device, dtype=args.dtype, seed=args.seed,
            train_size=args.train_size, storage=args.storage, study_name=args.study_name,
            output_dir=args.output_dir, workers=args.workers, scheduler=args.scheduler,
            retrain=args.retrain, progress=line, together=args.together,
        )  # fmt: skip
    except TuneInterrupted as stop:
        line.close()
        if stop.saved is not None:
            print(
                f"interrupted while retraining the best settings: the search is complete, "
                f"{_plural(stop.finished, 'finished trial')} kept in {stop.storage}; the model "
                f"trained so far is in {stop.saved}; run the same command again to retrain"
            )
        else:
            print(
                f"interrupted: {_plural(stop.finished, 'finished trial')} kept in "
                f"{stop.storage}; run the same command again to resume"
            )
        return 130
    finally:
        line.close()
    states = [row["state"] for row in result.trials]
    if not line.started:
        held = sum(state in ("COMPLETE", "PRUNED", "FAIL") for state in states)
        print(f"nothing left to run: the study already holds {_plural(held, 'finished trial')}")
    running = states.count("RUNNING")
    print(
        f"the study holds {_plural(len(states), 'trial')}: {states.count('COMPLETE')} finished, "
        f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed, "
        f"{states.count('CANCELLED')} cancelled"
        + (f", {states.count('RETRIED')} retried" if "RETRIED" in states else "")
        + (f", {running} still running in another search" if running else "")
        + "; the best by validation accuracy:"
    )
    print(best_table(result.trials))
    print(f"best settings: {result.command}")
    if result.best_run is not None:
        print(
            f"best settings retrained: validation {result.best_run.val_acc:.4f}, "
            f"test {result.best_run.test_acc:.4f}"
        )
    elif result.retrained is not None:
        print(
            f"best settings retrained before, in {args.output_dir / 'best'}: validation "
            f"{result.retrained['val_acc']:.4f}, test {result.retrained['test_acc']:.4f}"
        )
    print("wrote " + ", ".join(str(p) for p in result.written))
    print(f"study: {result.storage}")
    return 0


def _budget(counts: dict[str, Any]) -> str:
    """What the search is to do: ``3 trials, 2 at a time``, ``for 60 s, 2 trials at a
    time``, or both limits."""
    at_once, budget, timeout = counts["starting"], counts["budget"], counts["timeout"]
    if budget is None:
        return f"for {_duration(timeout)}, {_plural(at_once, 'trial')} at a time"
    held = counts["done"] + counts["pruned"] + counts["failed"]
    return (
        f"{_plural(budget, 'trial')}, {at_once} at a time"
        + (f" (the study holds {held} already)" if held else "")
        + (f", for at most {_duration(timeout)}" if timeout is not None else "")
    )


def _duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 5 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _plural(count: int, noun: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class _StatusLine:
    """The search's progress: one line on stderr, redrawn in place on a terminal.

    ``header`` (with ``{budget}`` for what the search is to do: ``3 trials, 2 at a time``)
    is printed on stdout when the search starts its first trials; each trial's end
    redraws the counts, the best so far and the time left.
    """

    def __init__(self, header: str) -> None:
        self.tty = sys.stderr.isatty()
        self.drawn = False
        self.header = header
        self.started = False

    # Any: as xpnet.tune.tune types its progress dict (each key's value of its own type).
    def __call__(self, counts: dict[str, Any]) -> None:
        if "retraining" in counts:
            self.close()
            print(f"retraining the best settings (trial {counts['retraining']})", flush=True)
            return
        if "starting" in counts:
            if not self.started:
                print(self.header.format(budget=_budget(counts)), flush=True)
            self.started = True
            return
        best = (
            f"best {counts['best_value']:.4f} (trial {counts['best_trial']})"
            if counts["best_value"] is not None
            else "no finished trial yet"
        )
        left = counts.get("seconds_left")
        text = (
            f"trials: {counts['done']} done, {counts['running']} running, "
            f"{counts['pruned']} pruned, {counts['failed']} failed; {best}"
            + ("" if left is None or counts["running"] == 0 else f"; about {_duration(left)} left")
        )
        sys.stderr.write(f"\r{text}" if self.tty else f"{text}\n")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.tty and self.drawn:
            sys.stderr.write("\n")
        self.drawn = False


COMMAND = Command(
    "tune",
    "search hyperparameters (Optuna), trials on Dask workers",
    _add_arguments,
    _tune,
    description="Search the lab's hyperparameters: Optuna samples and records the trials, "
    "Dask workers train them (a local cluster, or --scheduler). Running the same "
    "command again resumes the study. Needs: pip install optuna distributed.",
)
