"""The ``xpnet`` command: ``train``, ``evaluate``, ``tune``, ``data``, ``export`` and
``serve``. It parses and prints; the work is :mod:`xpnet.pipeline`'s,
:mod:`xpnet.tune`'s, :mod:`xpnet.export`'s and :mod:`xpnet.serve`'s.

Exit status: 0 on success; 1 for an expected failure (missing data, no GPU, a bad
value or type, output that cannot be written), with a one-line message and no traceback;
2 for a usage error; 130 after Ctrl-C (``train`` saves the model first).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import __version__
from xpnet._progress import TrainingProgress
from xpnet.backend import SUPPORTED_BACKENDS, allow_float64
from xpnet.data import mnist
from xpnet.errors import DataError, TrainingInterrupted, TuneInterrupted
from xpnet.hyperparameters import rows
from xpnet.pipeline import (
    TRAIN_ROWS,
    check_output_dir,
    evaluate,
    plan_run,
    prepare_data,
    run_plan,
    save_run,
)
from xpnet.recipes import RECIPES, Recipe
from xpnet.training import compiled_runner_kind


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`xpnet train | head -1`): the work is saved.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("xpnet: stdout was closed; results were written before printing", file=sys.stderr)
        return 1
    except (TypeError, ValueError, ImportError, RuntimeError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"xpnet: error: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    formatter = _DefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="xpnet", description="Train and evaluate the lab's two-layer network on MNIST."
    )
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train on MNIST and write model, history, plots", formatter_class=formatter
    )
    train.set_defaults(command=_train)
    train.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="lab",
        help="lab: the handout's best settings; fast: scaled inputs, He init, momentum and "
        "a cosine schedule over shuffled epochs; best: a wide layer, dropout, AdamW; "
        "best-augmented: best on distorted digits, longer",
    )
    _add_recipe_options(train)
    _add_compute_options(train)
    _add_data_options(train)
    train.add_argument(
        "--output-dir",
        type=Path,
        default=Path("xpnet-output"),
        help="where model.npz, history.json and the plots go (created with the first file)",
    )

    evaluate_ = commands.add_parser(
        "evaluate", help="test accuracy and confusion matrix", formatter_class=formatter
    )
    evaluate_.set_defaults(command=_evaluate)
    evaluate_.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    _add_compute_options(evaluate_, dtype_default=None)
    _add_data_options(evaluate_, dataset=False)
    evaluate_.add_argument(
        "--output-dir", type=Path, help="where confusion.png goes (default: the model's directory)"
    )

    _add_tune_parser(commands, formatter)
    _add_serve_parser(commands, formatter)
    _add_export_parser(commands, formatter)

    data = commands.add_parser(
        "data",
        help="download, verify and locate the data",
        formatter_class=formatter,
        description="Show the directory of a dataset's four IDX files, download the missing "
        "ones from the dataset's mirrors (which needs a network) and check every file's "
        "SHA-256. Without a network, copy the four files into the directory it shows, or "
        "point --data-dir (or XPNET_DATA, XPNET_FASHION_DATA) at a directory that has them.",
    )
    data.set_defaults(command=_data)
    _add_data_options(data)
    return parser


def _add_serve_parser(commands: Any, formatter: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="a local web page to draw digits on and watch the model read them",
        formatter_class=formatter,
        description="Serve a page to draw a digit on (mouse or finger) that shows the model's "
        'reading as you draw, and a JSON API: POST /predict {"image": 28x28 values 0..255}. '
        "Ctrl-C stops it.",
    )
    serve.set_defaults(command=_serve)
    serve.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="the port (0: a free one)")
    _add_compute_options(serve, dtype_default=None)


def _serve(args: argparse.Namespace) -> int:
    from xpnet import TwoLayerNet
    from xpnet.serve import make_server

    _compute(args)
    net = TwoLayerNet.load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    server = make_server(net, args.host, args.port)
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}/"
    print(f"serving {args.model} on {url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("xpnet serve: stopped", file=sys.stderr)
        return 130
    finally:
        server.server_close()
    return 0


def _add_tune_parser(commands: Any, formatter: Any) -> None:
    tune = commands.add_parser(
        "tune",
        help="search hyperparameters (Optuna), trials on Dask workers",
        formatter_class=formatter,
        description="Search the lab's hyperparameters: Optuna samples and records the trials, "
        "Dask workers train them (a local cluster, or --scheduler). Running the same "
        "command again resumes the study. Needs: pip install 'xpnet[tune]'.",
    )
    tune.set_defaults(command=_tune)
    budget = tune.add_argument_group("budget")
    budget.add_argument(
        "--trials", type=int, default=20, help="finished trials the study should hold"
    )
    budget.add_argument("--timeout", type=float, help="seconds after which no new trial starts")
    budget.add_argument(
        "--train-size", type=int, help="train on the first N training images only (quick searches)"
    )
    space = tune.add_argument_group(
        "search space (default: around the recipe's values; LOW == HIGH fixes a knob)"
    )
    for row in rows():  # a range (or choices) for each hyperparameter the table searches
        if row.search is None:
            continue
        flag, dest = _flag(row.name), f"range_{row.name}"
        if row.search.scale == "choices":
            space.add_argument(flag, type=row.kind, nargs="+", metavar=row.name.upper(), dest=dest,
                               help=f"the values of {row.name} to choose from")  # fmt: skip
        else:
            scale = "log scale" if row.search.scale == "log" else "linear"
            space.add_argument(flag, type=row.kind, nargs=2, metavar=("LOW", "HIGH"), dest=dest,
                               help=f"the range of {row.name} ({scale})")  # fmt: skip
    tune.add_argument("--recipe", choices=sorted(RECIPES), default="lab")
    tune.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial")
    _add_compute_options(tune)
    _add_data_options(tune)
    engines = tune.add_argument_group("engines")
    engines.add_argument(
        "--storage",
        help="an Optuna storage: an SQLite file, journal:FILE, or a PostgreSQL/MySQL URL "
        "(default: study.db in the output directory)",
    )
    engines.add_argument("--study-name", default="xpnet-tune")
    engines.add_argument(
        "--workers",
        type=_positive_int,
        help="local Dask worker processes (default: the cores, or one per GPU)",
    )
    engines.add_argument(
        "--scheduler", help="address of an existing Dask scheduler, e.g. tcp://host:8786"
    )
    tune.add_argument("--no-retrain", dest="retrain", action="store_false",
                      help="skip retraining the best settings and measuring them on the test "
                      "set (by default they are retrained, into best/)")  # fmt: skip
    tune.add_argument(
        "--output-dir", type=Path, default=Path("xpnet-tune"),
        help="where the study, trials.csv, the plots and the best model (best/) go",
    )  # fmt: skip


def _add_export_parser(commands: Any, formatter: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write a model as ONNX, for ONNX Runtime",
        formatter_class=formatter,
        description="Write a model file as an ONNX model traced from xpnet's own code: input "
        "`images` (float32 raw pixels 0..255, shape (N, 28, 28, 1)), outputs `labels` and "
        "`probabilities`. A float64 model is exported in float32. Needs: pip install "
        "'xpnet[onnx]'.",
    )
    export.set_defaults(command=_export)
    export.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    export.add_argument(
        "--output", type=Path, help="the .onnx file to write (default: the model's path, .onnx)"
    )


def _export(args: argparse.Namespace) -> int:
    from xpnet.export import export_onnx

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        written = export_onnx(args.model, args.output)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    print(f"wrote {written}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    try:
        import distributed  # noqa: F401
        import optuna  # noqa: F401  (the engines, checked before any work)

        from xpnet.tune import tune
        from xpnet.tune._space import knob
    except ImportError as err:
        raise ImportError(
            f"xpnet tune needs Optuna and Dask ({err}); install them with: "
            "pip install 'xpnet[tune]'"
        ) from None
    import logging

    logging.getLogger("optuna").setLevel(logging.WARNING)
    # A lost cluster is told in one line (ClusterLost), not by Dask's reconnection logs.
    for name in [*logging.root.manager.loggerDict, "distributed"]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    space = {row.name: knob(row, getattr(args, f"range_{row.name}")) for row in rows()
             if getattr(args, f"range_{row.name}", None) is not None}  # fmt: skip
    source = f"Dask scheduler {args.scheduler}" if args.scheduler else "a local Dask cluster"
    line = _StatusLine(
        f"searching {{count}} of recipe {args.recipe} on {args.dataset} with {args.backend} "
        f"{args.dtype}, {source}; output in {args.output_dir}"
    )
    try:
        result = tune(
            trials=args.trials, timeout=args.timeout, space=space, recipe=args.recipe,
            dataset=args.dataset, data_dir=args.data_dir, backend=args.backend,
            device=args.device, dtype=args.dtype, seed=args.seed,
            train_size=args.train_size, storage=args.storage, study_name=args.study_name,
            output_dir=args.output_dir, workers=args.workers, scheduler=args.scheduler,
            retrain=args.retrain, progress=line,
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
    from xpnet.tune._report import best_table

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


def _plural(count: int, noun: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


class _StatusLine:
    """The search's progress: one line on stderr, redrawn in place on a terminal.

    ``header`` (with ``{count}`` for the trials to run) is printed on stdout when the
    search starts its first trials.
    """

    def __init__(self, header: str) -> None:
        self.tty = sys.stderr.isatty()
        self.drawn = False
        self.header = header
        self.started = False

    def __call__(self, counts: dict[str, Any]) -> None:
        if "retraining" in counts:
            self.close()
            print(f"retraining the best settings (trial {counts['retraining']})", flush=True)
            return
        if "starting" in counts:
            if not self.started:
                print(self.header.format(count=_plural(counts["starting"], "trial")), flush=True)
            self.started = True
            return
        best = (
            f"best {counts['best_value']:.4f} (trial {counts['best_trial']})"
            if counts["best_value"] is not None
            else "no finished trial yet"
        )
        text = (
            f"trials: {counts['done']} done, {counts['running']} running, "
            f"{counts['pruned']} pruned, {counts['failed']} failed; {best}"
        )
        sys.stderr.write(f"\r{text}" if self.tty else f"{text}\n")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.tty and self.drawn:
            sys.stderr.write("\n")
        self.drawn = False


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None (whose help says what it means)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action, argparse._StoreConstAction):
            return action.help  # None, or an on/off flag whose help says what it does
        return super()._get_help_string(action)


def _add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """One option per recipe field, from the hyperparameters' table; default: the recipe's."""
    group = parser.add_argument_group("hyperparameters (default: the recipe's)")
    length = group.add_mutually_exclusive_group()
    for row in rows(Recipe):
        shown = ", ".join(f"{name} {_shown(row.name, recipe)}" for name, recipe in RECIPES.items())
        options: dict[str, Any] = {"default": argparse.SUPPRESS, "help": f"{row.help}: {shown}"}
        target = length if row.name == "num_iters" else group
        if row.kind is bool:
            target.add_argument(_flag(row.name), action=argparse.BooleanOptionalAction, **options)
        elif row.choices:
            target.add_argument(_flag(row.name), choices=row.choices, **options)
        else:
            target.add_argument(_flag(row.name), type=row.kind, **options)
        if row.name == "num_iters":
            length.add_argument("--epochs", type=_positive_int, default=argparse.SUPPRESS,
                                metavar="N", help=_EPOCHS_HELP)  # fmt: skip
    group.add_argument("--seed", type=int, default=0, help="random seed")


def _flag(name: str) -> str:
    """A hyperparameter's option: ``--learning-rate`` for ``learning_rate``."""
    return "--" + name.replace("_", "-")


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


_EPOCHS_HELP = _epochs_help()


def _shown(field: str, recipe: Recipe) -> str:
    """A recipe's value of a field, as ``-h`` shows it."""
    if field == "std" and recipe.init == "he":
        return "He"
    value = getattr(recipe, field)
    if field == "num_iters":
        epochs = value / (TRAIN_ROWS // recipe.batch_size)
        return f"{value} ({epochs:.3g} epochs)"
    return str(value)


def _add_compute_options(
    parser: argparse.ArgumentParser, dtype_default: str | None = "float64"
) -> None:
    group = parser.add_argument_group("compute")
    group.add_argument(
        "--backend", default="numpy", choices=list(SUPPORTED_BACKENDS), help="the array library"
    )
    group.add_argument(
        "--device",
        default=None,
        type=_device,
        help="e.g. cuda:1 (torch), 1 (cupy), gpu:0 (jax) (default: the backend's default device)",
    )
    group.add_argument(
        "--dtype",
        default=dtype_default,
        choices=["float64", "float32"],
        help="float64 on JAX turns on its 64-bit mode"
        + ("" if dtype_default else "; default: the model file's"),
    )


def _add_data_options(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    group = parser.add_argument_group("data")
    if dataset:
        group.add_argument(
            "--dataset", default="mnist", choices=sorted(mnist.DATASETS), help="the images"
        )
    places = "; ".join(_data_places(ds) for ds in mnist.DATASETS.values())
    group.add_argument(
        "--data-dir",
        type=Path,
        help="directory of the four IDX files (default"
        + ("" if dataset else ", for the model's dataset")
        + f": {places}; the cache is ~/.cache/xpnet/DATASET, or $XDG_CACHE_HOME/xpnet/DATASET)",
    )


def _data_places(ds: mnist.Dataset) -> str:
    """Where a dataset's files are looked for, in order, without --data-dir."""
    system = [f"{d} (Debian's dataset-{ds.name} package) if it has them" for d in ds.system_dirs]
    return f"for {ds.name} ${ds.env}, else " + ", else ".join([*system, "the cache"])


def _device(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _compute(args: argparse.Namespace) -> None:
    """What the compute options need before any array exists: the library's 64-bit mode
    where float64 (or a model file's dtype) needs a global switch."""
    if args.dtype in ("float64", None):
        allow_float64(args.backend)


def _train(args: argparse.Namespace) -> int:
    overrides = {row.name: getattr(args, row.name) for row in rows(Recipe) if row.name in args}
    epochs = getattr(args, "epochs", None)
    # Everything is checked before anything is created, read or printed; the output
    # directory is made with the first file, so a failed run leaves none behind.
    plan = plan_run(
        args.recipe, dataset=args.dataset, backend=args.backend, device=args.device,
        dtype=args.dtype, seed=args.seed, enable_float64=True, epochs=epochs, **overrides,
    )  # fmt: skip
    out = check_output_dir(args.output_dir, create=False)  # before any training is spent
    data = prepare_data(plan.recipe.preprocessing, dataset=args.dataset, data_dir=args.data_dir)
    if epochs is not None and data.X_train.shape[0] != TRAIN_ROWS:  # epochs of these files
        plan = plan_run(plan.recipe, dataset=args.dataset, backend=args.backend,
                        device=args.device, dtype=args.dtype, seed=args.seed,
                        enable_float64=True, data=data, epochs=epochs)  # fmt: skip
    backend, D, H, C = plan.settings.compute.resolved, *plan.settings.sizes
    kind = compiled_runner_kind(backend)
    print(
        f"training {D}-{H}-{C} on {args.dataset} ({data.X_train.shape[0]:,} images) with "
        f"{backend} {args.dtype}, {kind.name if kind is not None else 'eager loop'}, "
        f"recipe {args.recipe}",
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
        save_run(stop.result, out)
        print(
            f"interrupted after {stop.iterations} of {recipe.num_iters} iterations; saved "
            f"the model trained so far to {out / 'model.npz'}"
        )
        return 130
    finally:
        bar.close()
    try:
        written = save_run(result, out)  # saved before anything more is printed
    except OSError:  # the directory went read-only or full: the measurements are still told
        _print_accuracies(result.val_acc, result.test_acc)
        raise
    _print_accuracies(result.val_acc, result.test_acc)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _print_accuracies(val_acc: float | None, test_acc: float | None) -> None:
    print(f"validation accuracy: {val_acc:.4f}")
    print(f"test accuracy:       {test_acc:.4f}", flush=True)


def _evaluate(args: argparse.Namespace) -> int:
    _compute(args)
    if args.output_dir is not None:  # a file or a read-only directory: said before any work
        check_output_dir(args.output_dir, create=False)
    found = evaluate(
        args.model, data_dir=args.data_dir, backend=args.backend, device=args.device,
        dtype=args.dtype,
    )  # fmt: skip
    written = found.save_plot(args.output_dir or args.model.parent)
    if found.note:
        print(f"note: {found.note}", file=sys.stderr)
    print(f"test accuracy: {found.test_acc:.4f} on {found.num_images:,} {found.dataset} images")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(_confusion_text(found.confusion, mnist.DATASETS[found.dataset].class_names))
    if written:
        print("wrote " + ", ".join(map(str, written)))
    return 0


def _confusion_text(confusion: np.ndarray, class_names: Sequence[str]) -> str:
    width = max(len(str(confusion.max())), 4)
    names = [name[:12] for name in class_names]
    label = max(len(name) for name in names)
    lines = [" " * (label + 1) + "".join(f"{j:>{width + 1}}" for j in range(len(names)))]
    lines += [
        f"{name:>{label}} " + "".join(f"{n:>{width + 1}}" for n in row)
        for name, row in zip(names, confusion, strict=True)
    ]
    return "\n".join(lines)


def _data(args: argparse.Namespace) -> int:
    directory = mnist.data_dir(data_dir=args.data_dir, dataset=args.dataset)
    print(f"{args.dataset} data directory: {directory}", flush=True)
    mnist.fetch(data_dir=args.data_dir, dataset=args.dataset)
    owners = mnist.identify(data_dir=args.data_dir, dataset=args.dataset)
    for name, owner in owners.items():
        if owner == args.dataset:
            print(f"  {name}: verified (SHA-256)")
        elif owner is not None:
            print(f"  {name}: {owner}'s file, not {args.dataset}'s (by its SHA-256)")
        else:
            print(f"  {name}: DOES NOT MATCH the known SHA-256")
    others = sorted({owner for owner in owners.values() if owner not in (None, args.dataset)})
    if others:
        raise DataError(
            f"{directory} holds {' and '.join(others)} files, not {args.dataset}'s: they are "
            f"fine as they are; use --dataset {others[0]} for them, or point --data-dir (or "
            f"{mnist.DATASETS[args.dataset].env}) at the {args.dataset} files"
        )
    if not all(owner == args.dataset for owner in owners.values()):
        raise DataError(
            f"some {args.dataset} files in {directory} do not verify; delete them and run "
            "`xpnet data` again to download fresh copies"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
