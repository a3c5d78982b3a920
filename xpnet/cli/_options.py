"""What the ``xpnet`` commands share: the record of a command, the compute and data
options, and the small parsers of option values.

An option shows its default in its help with :data:`DEFAULT` where it has one; an
option whose default is None says in words what happens without it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xpnet.backend import SUPPORTED_BACKENDS, allow_float64
from xpnet.data import mnist

#: The end of an option's help that shows its default (argparse fills it in).
DEFAULT = " (default: %(default)s)"


@dataclass(frozen=True)
class Command:
    """One ``xpnet`` command.

    Attributes
    ----------
    name : str
        ``xpnet NAME``.
    help : str
        Its line in ``xpnet -h``.
    add_arguments : callable
        ``add_arguments(parser)`` adds its options to its own parser.
    run : callable
        ``run(args)`` does it; returns the exit status.
    description : str or None
        What ``xpnet NAME -h`` says above the options.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


class _DefaultText(str):
    """An option's default text: what argparse gives when the option is left out."""


class _DefaultNumber(int):
    """An option's default number: what argparse gives when the option is left out."""


def default(value: str | int | None) -> str | int | None:
    """``value`` as an option's default, marked so that :func:`given` can tell it from the
    same value typed on the command line (``--backend numpy``)."""
    if isinstance(value, str):
        return _DefaultText(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _DefaultNumber(value)
    return value


def given(value: object) -> bool:
    """Whether an option's value was given on the command line (not its default; None,
    the default of an option without one, counts as not given)."""
    return value is not None and not isinstance(value, (_DefaultText, _DefaultNumber))


def flag(name: str) -> str:
    """A hyperparameter's option: ``--learning-rate`` for ``learning_rate``."""
    return "--" + name.replace("_", "-")


def positive_int(text: str) -> int:
    """An option's value that must be a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An option's value that must be a whole number of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {value}")
    return value


def add_compute_options(
    parser: argparse.ArgumentParser, dtype_default: str | None = "float64", threads: bool = False
) -> None:
    """``--backend``, ``--device`` and ``--dtype`` (None: the model file's), and, with
    ``threads``, ``--threads``."""
    group = parser.add_argument_group("compute")
    group.add_argument(
        "--backend",
        default=default("numpy"),
        choices=list(SUPPORTED_BACKENDS),
        help="the array library" + DEFAULT,
    )
    group.add_argument(
        "--device",
        default=None,
        type=_device,
        help="e.g. cuda:1 (torch), 1 (cupy), gpu:0 (jax) (default: the backend's default device)",
    )
    group.add_argument(
        "--dtype",
        default=default(dtype_default),
        choices=["float64", "float32"],
        help="float64 on JAX turns on its 64-bit mode"
        + (DEFAULT if dtype_default else "; default: the model file's"),
    )
    if threads:
        group.add_argument(
            "--threads",
            type=positive_int,
            metavar="N",
            help="the CPU threads the matrix products run on (default: the count chosen "
            "for their size, one at the lab's, two at the best recipe's; at most the "
            "BLAS's, so OPENBLAS_NUM_THREADS caps it)",
        )


def apply_compute_options(args: argparse.Namespace) -> None:
    """What the compute options need before any array exists: the library's 64-bit mode
    where float64 (or a model file's dtype) needs a global switch."""
    if args.dtype in ("float64", None):
        allow_float64(args.backend)


def add_data_options(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    """``--dataset`` (unless the model file names it) and ``--data-dir``."""
    group = parser.add_argument_group("data")
    if dataset:
        group.add_argument(
            "--dataset",
            default=default("mnist"),
            choices=sorted(mnist.DATASETS),
            help="the images" + DEFAULT,
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
