"""A run's files: the output directory checked before training, then the model,
its history and the plots written into it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xpnet import _checks, plots
from xpnet._atomic import atomic_write, check_writable_directory
from xpnet._typing import JSON
from xpnet._wording import setting
from xpnet.data import mnist
from xpnet.neural_net import TwoLayerNet
from xpnet.pipeline._run import RunResult
from xpnet.training import CHECKPOINT_FILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["check_output_dir", "refuse_another_run", "save_plots", "save_run", "write_figures"]


#: What ``xpnet evaluate`` adds to a run's directory beside ``confusion.png``.
EVALUATION_PICTURES = ("misclassified.png",)
#: The files a run writes into its output directory (its checkpoint with them).
RUN_FILES = (
    "model.npz", "history.json", "loss_accuracy.png", "weights.png", "confusion.png",
    CHECKPOINT_FILE,
)  # fmt: skip


def check_output_dir(
    path: str | os.PathLike[str], *, create: bool = True, overwrite: bool = False
) -> Path:
    """Check that ``path`` takes a run's files (creating it if needed): before any
    training is spent.

    Unless ``overwrite``, a directory that holds another run (any of its files:
    ``model.npz``, ``history.json``, the three plots and ``checkpoint.npz``) is refused,
    so that one run never
    silently replaces another; an empty or absent directory, or one with other files only,
    is fine. None of the run's files there may
    be a FIFO, a device or a directory.

    With ``create=False`` a missing directory is not created (its nearest existing
    parent is checked instead): :func:`save_run` creates it with the first file, so a
    run that fails before (missing data, say) leaves no empty directory behind.

    Raises
    ------
    FileExistsError
        If ``path`` holds another run and ``overwrite`` is False.
    OSError
        If it is a file, lies under a file, or cannot be written to, or one of the
        run's files is not a regular file; the message says which.
    """
    _checks.flag("overwrite", overwrite)
    checked = check_writable_directory(Path(path), create=create, files=RUN_FILES)
    if not overwrite:
        refuse_another_run(checked, RUN_FILES)
    return checked


def refuse_another_run(path: Path, files: Sequence[str]) -> None:
    """Refuse the directory ``path`` if any of a run's ``files`` is there already.

    Raises
    ------
    FileExistsError
        Naming the directory, the files found and the setting that replaces them
        (``overwrite=True``, or ``--overwrite`` on the command line).
    """
    held = [name for name in files if (path / name).is_file()]
    if held:
        resume = " (or resume that run from its checkpoint)" if CHECKPOINT_FILE in held else ""
        raise FileExistsError(
            f"output directory {path} holds another run's files ({', '.join(held)}); give "
            f"{setting('overwrite', True)} to replace it, or choose another directory{resume}"
        )


def save_run(
    result: RunResult, output_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> list[Path]:
    """Write ``model.npz``, ``history.json`` and the plots of a run; return the paths.

    Unless ``overwrite``, a directory that holds another run is refused before anything
    is written (as :func:`check_output_dir` refuses it; the run's own checkpoint there is
    not another run's). The model comes first, so nothing after it can cost it. Without
    matplotlib the plots are left out, with a note on stderr. With ``overwrite``, a file of
    another run that this one does not write (its history and plots, where this run was
    stopped before it was measured; an evaluation's pictures) is removed, so that the
    directory never mixes two runs.

    Raises
    ------
    FileExistsError
        If the directory holds another run and ``overwrite`` is False.
    OSError
        If a file cannot be written, naming it and the directory.
    """
    out = Path(output_dir)
    if not _checks.flag("overwrite", overwrite):
        own = result.checkpoint is not None and result.checkpoint.resolve() == \
            (out / CHECKPOINT_FILE).resolve()  # fmt: skip
        refuse_another_run(out, [name for name in RUN_FILES
                                 if not (own and name == CHECKPOINT_FILE)])  # fmt: skip
    written = [out / "model.npz"]
    result.net.save(written[0], result.metadata())
    if not result.interrupted and result.confusion is not None:  # measured
        written.append(out / "history.json")
        history = {**result.history, "val_acc": result.val_acc, "test_acc": result.test_acc}
        with atomic_write(written[1], "w") as f:
            json.dump(history, f)
        names = mnist.DATASETS[result.dataset].class_names
        written += save_plots(out, result.confusion, names, net=result.net, history=history)
    for name in (*RUN_FILES, *EVALUATION_PICTURES) if overwrite else ():  # another run's
        if name not in ("model.npz", CHECKPOINT_FILE) and out / name not in written:
            (out / name).unlink(missing_ok=True)
    return written


def save_plots(
    out: Path,
    confusion: np.ndarray,
    class_names: Sequence[str] | None,
    *,
    net: TwoLayerNet | None = None,
    history: Mapping[str, JSON] | None = None,
) -> list[Path]:
    """Write ``loss_accuracy.png`` (given a ``history``), ``weights.png`` (given a ``net``)
    and ``confusion.png`` into ``out``; return their paths.

    Without matplotlib none is written, with a note on stderr.

    Parameters
    ----------
    out : pathlib.Path
    confusion : numpy.ndarray of int, shape (C, C)
        Counts: rows true classes, columns predicted.
    class_names : sequence of str, optional
        C names for the confusion matrix's axes.
    net : TwoLayerNet, optional
    history : dict, optional
        As :attr:`RunResult.history`, with ``val_acc`` and ``test_acc``.
    """
    figures: dict[str, Callable[[], Figure]] = {}
    if history is not None:
        figures["loss_accuracy.png"] = lambda: plots.plot_history(history)
    if net is not None:
        figures["weights.png"] = lambda: plots.plot_weights(net.params["W1"])
    figures["confusion.png"] = lambda: plots.plot_confusion(confusion, class_names)
    return write_figures(out, figures)


def write_figures(out: Path, figures: Mapping[str, Callable[[], Figure]]) -> list[Path]:
    """Make each figure and write it into ``out`` under its name; return the paths.

    Without matplotlib none is written, with a note on stderr (``no plots: ...``).
    """
    written: list[Path] = []
    for name, make in figures.items():
        try:
            figure = make()
        except ImportError as err:
            print(f"no plots: {err}", file=sys.stderr)
            return written
        plots.save_figure(figure, out / name)
        written.append(out / name)
    return written
