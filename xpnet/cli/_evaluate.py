"""``xpnet evaluate``: a saved model's test accuracy, classification report and confusion
matrix, and pictures of the confusion and of the misclassified digits."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xpnet.cli._options import (
    Command,
    add_compute_options,
    add_data_options,
    apply_compute_options,
)
from xpnet.data import mnist
from xpnet.pipeline import check_plots_dir, evaluate


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    add_compute_options(parser, dtype_default=None, threads=True)
    add_data_options(parser, dataset=False)
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where confusion.png and misclassified.png go (default: the model's directory)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files in an --output-dir that holds another run's or evaluation's "
        "(without it, such a directory is refused before any work)",
    )


def _evaluate(args: argparse.Namespace) -> int:
    apply_compute_options(args)
    if args.output_dir is not None:  # a file, read-only, another run's: said before any work
        check_plots_dir(args.output_dir, args.model, overwrite=args.overwrite, create=False)
    found = evaluate(
        args.model, data_dir=args.data_dir, backend=args.backend, device=args.device,
        dtype=args.dtype, threads=args.threads,
    )  # fmt: skip
    # The results first: a plot that cannot be written (a read-only model directory)
    # costs the picture, never the accuracy measured.
    print(f"test accuracy: {found.test_acc:.4f} on {found.num_images:,} {found.dataset} images")
    print(found.report())
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(_confusion_text(found.confusion, mnist.DATASETS[found.dataset].class_names), flush=True)
    try:
        written = found.save_plots(args.output_dir, overwrite=args.overwrite)
    except OSError as err:
        raise OSError(
            f"{err}; the results above were measured, only the plots are missing: give "
            "--output-dir a directory you can write to"
        ) from None
    if written:
        print("wrote " + ", ".join(map(str, written)))
    return 0


def _confusion_text(confusion: np.ndarray, class_names: Sequence[str]) -> str:
    """The matrix as text, a row per true class, the columns numbered by predicted class.

    Parameters
    ----------
    confusion : numpy.ndarray, shape (C, C)
        Counts: row i, column j is the images of class i read as class j.
    class_names : sequence of str, length C
        Each shown by its first 12 characters.
    """
    width = max(len(str(confusion.max())), 4)
    names = [name[:12] for name in class_names]
    label = max(len(name) for name in names)
    lines = [" " * (label + 1) + "".join(f"{j:>{width + 1}}" for j in range(len(names)))]
    lines += [
        f"{name:>{label}} " + "".join(f"{n:>{width + 1}}" for n in row)
        for name, row in zip(names, confusion, strict=True)
    ]
    return "\n".join(lines)


COMMAND = Command(
    "evaluate",
    "test accuracy, classification report, confusion, misclassified digits",
    _add_arguments,
    _evaluate,
)
