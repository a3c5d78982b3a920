"""The ``xpnet`` command: ``train``, ``evaluate`` and ``data``.

Exit status: 0 on success, 1 for an expected failure (missing data, no GPU, a bad
value), with a one-line message and no traceback, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xpnet import __version__
from xpnet._atomic import atomic_write
from xpnet._progress import ProgressBar
from xpnet.backend import SUPPORTED_BACKENDS
from xpnet.data import mnist
from xpnet.errors import DataError, TrainingInterrupted
from xpnet.metrics import accuracy, confusion_matrix
from xpnet.neural_net import INITS, SCHEDULES, TwoLayerNet
from xpnet.preprocess import PREPROCESSORS
from xpnet.recipes import RECIPES, Recipe


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    except (ValueError, ImportError, RuntimeError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"xpnet: error: {message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnet", description="Train and evaluate the lab's two-layer network on MNIST."
    )
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train on MNIST and write model, history, plots")
    train.set_defaults(command=_train)
    train.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="lab",
        help="lab: the handout's best settings (default); fast: scaled inputs, He init, "
        "momentum and a cosine schedule over shuffled epochs",
    )
    hyper = train.add_argument_group("hyperparameters (defaults: the recipe's)")
    for field in dataclasses.fields(Recipe):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            hyper.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif field.name in ("preprocessing", "init", "schedule"):
            choices = {"preprocessing": PREPROCESSORS, "init": INITS, "schedule": SCHEDULES}
            hyper.add_argument(flag, choices=list(choices[field.name]), default=None)
        else:
            hyper.add_argument(flag, type={"int": int, "float": float}[field.type], default=None)
    hyper.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_compute_options(train)
    _add_data_options(train)
    train.add_argument("--output-dir", type=Path, default=Path("xpnet-output"))

    evaluate = commands.add_parser("evaluate", help="test accuracy and confusion matrix")
    evaluate.set_defaults(command=_evaluate)
    evaluate.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    _add_compute_options(evaluate, dtype=False)
    _add_data_options(evaluate, dataset=False)
    evaluate.add_argument(
        "--output-dir", type=Path, help="where to write confusion.png (default: the model's)"
    )

    data = commands.add_parser("data", help="download, verify and locate the data")
    data.set_defaults(command=_data)
    _add_data_options(data)
    return parser


def _add_compute_options(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    group = parser.add_argument_group("compute")
    group.add_argument("--backend", default="numpy", choices=list(SUPPORTED_BACKENDS))
    group.add_argument("--device", default=None, type=_device, help="e.g. cuda:1 (torch), 1 (cupy)")
    if dtype:
        group.add_argument("--dtype", default="float64", choices=["float64", "float32"])


def _add_data_options(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    group = parser.add_argument_group("data")
    if dataset:
        group.add_argument("--dataset", default="mnist", choices=sorted(mnist.DATASETS))
    group.add_argument(
        "--data-dir", type=Path, help="directory of the four IDX files (default: XPNET_DATA, cache)"
    )


def _device(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _prepared_data(dataset: str, data_dir: Path | None, preprocessing: str) -> list[np.ndarray]:
    X_train, y_train, X_val, y_val, X_test, y_test = mnist.read_data_sets(data_dir, dataset=dataset)
    X_train, X_val, X_test = PREPROCESSORS[preprocessing](X_train, X_val, X_test)
    return [X_train, y_train, X_val, y_val, X_test, y_test]


def _recipe(args: argparse.Namespace) -> Recipe:
    """The chosen recipe, with any hyperparameter given on the command line."""
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Recipe)
        if getattr(args, field.name) is not None
    }
    return dataclasses.replace(RECIPES[args.recipe], **overrides)


def _train(args: argparse.Namespace) -> int:
    recipe = _recipe(args)
    X_train, y_train, X_val, y_val, X_test, y_test = _prepared_data(
        args.dataset, args.data_dir, recipe.preprocessing
    )
    net = TwoLayerNet(
        X_train.shape[1],
        recipe.hidden_size,
        10,
        std=recipe.std,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        init=recipe.init,
    )
    print(
        f"training {net.sizes[0]}-{net.sizes[1]}-{net.sizes[2]} on {args.dataset} "
        f"({X_train.shape[0]:,} images) with {args.backend} {args.dtype}, recipe {args.recipe}"
    )
    bar = ProgressBar(recipe.num_iters)
    out = args.output_dir
    metadata = {
        "dataset": args.dataset,
        "recipe": dataclasses.asdict(recipe),
        "preprocessing": recipe.preprocessing,
        "seed": args.seed,
    }
    try:
        history = net.train(X_train, y_train, X_val, y_val, progress=bar, **recipe.train_settings())
    except TrainingInterrupted as stop:
        bar.close()
        net.save(out / "model.npz", {**metadata, "interrupted": True})
        print(
            f"interrupted after {stop.iterations} of {recipe.num_iters} iterations; saved "
            f"the model trained so far to {out / 'model.npz'}"
        )
        return 130
    finally:
        bar.close()

    results = {
        "val_acc": float(accuracy(y_val, net.predict(X_val))),
        "test_acc": float(accuracy(y_test, net.predict(X_test))),
    }
    print(f"validation accuracy: {results['val_acc']:.4f}")
    print(f"test accuracy:       {results['test_acc']:.4f}")

    written = [out / "model.npz", out / "history.json"]
    net.save(written[0], {**metadata, "results": results})
    with atomic_write(written[1], "w") as f:
        json.dump({**history, **results}, f)
    written += _plots(out, net, history, confusion_matrix(y_test, net.predict(X_test), 10))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def _plots(out: Path, net: TwoLayerNet | None, history: Any, confusion: np.ndarray) -> list[Path]:
    from xpnet import plots

    figures = {"confusion.png": lambda: plots.plot_confusion(confusion)}
    if history is not None:
        figures["loss_accuracy.png"] = lambda: plots.plot_history(history)
    if net is not None:
        figures["weights.png"] = lambda: plots.plot_weights(net.params["W1"])
    written = []
    for name, make in figures.items():
        try:
            figure = make()
        except ImportError as err:
            print(f"no plots: {err}", file=sys.stderr)
            return written
        plots.save_figure(figure, out / name)
        written.append(out / name)
    return written


def _evaluate(args: argparse.Namespace) -> int:
    net = TwoLayerNet.load(args.model, backend=args.backend, device=args.device)
    dataset = net.metadata.get("dataset", "mnist")
    preprocessing = net.metadata.get("preprocessing", "subtract_mean_image")
    if preprocessing not in PREPROCESSORS:
        raise DataError(f"{args.model}: unknown preprocessing {preprocessing!r}")
    *_, X_test, y_test = _prepared_data(dataset, args.data_dir, preprocessing)
    predicted = net.predict(X_test)
    confusion = confusion_matrix(y_test, predicted, net.sizes[2])
    test_acc = float(accuracy(y_test, predicted))
    print(f"test accuracy: {test_acc:.4f} on {len(y_test):,} {dataset} images")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(_confusion_text(confusion))
    out = args.output_dir or args.model.parent
    written = _plots(out, None, None, confusion)
    if written:
        print("wrote " + ", ".join(map(str, written)))
    return 0


def _confusion_text(confusion: np.ndarray) -> str:
    width = max(len(str(confusion.max())), 4)
    classes = range(confusion.shape[0])
    lines = ["     " + "".join(f"{j:>{width + 1}}" for j in classes)]
    lines += [
        f"{i:>4} " + "".join(f"{n:>{width + 1}}" for n in row) for i, row in enumerate(confusion)
    ]
    return "\n".join(lines)


def _data(args: argparse.Namespace) -> int:
    directory = mnist.fetch(args.dataset, args.data_dir)
    status = mnist.verify(args.dataset, args.data_dir)
    print(f"{args.dataset} data in {directory.resolve()}")
    for name, ok in status.items():
        print(f"  {name}: {'verified (SHA-256)' if ok else 'DOES NOT MATCH the known SHA-256'}")
    if not all(status.values()):
        raise DataError(
            f"some {args.dataset} files in {directory} do not verify; delete them and run "
            "`xpnet data` again to download fresh copies"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
