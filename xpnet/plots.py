"""Pictures of training: loss and accuracy curves, first-layer weights, digits, confusion,
the misclassified digits.

Each function returns a ``matplotlib.figure.Figure`` made without pyplot, so it
works on a machine with no display; :func:`save_figure` writes one atomically
as PNG. Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from xpnet._atomic import atomic_write
from xpnet._typing import JSON, Array, ArrayLike
from xpnet.backend import to_numpy
from xpnet.vis_utils import visualize_grid

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = [
    "plot_confusion",
    "plot_digits",
    "plot_history",
    "plot_hyperparameters",
    "plot_misclassified",
    "plot_trials",
    "plot_weights",
    "save_figure",
]

History = Mapping[str, Sequence[float]]


def _figure(**kwargs: Any) -> Figure:  # Any: Figure's keywords, passed on
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plots need matplotlib; install it with: pip install matplotlib"
        ) from None
    return Figure(**kwargs)


def plot_history(runs: History | Mapping[str, History]) -> Figure:
    """The loss per iteration, and train and validation accuracy per epoch.

    Accuracies are recorded at the end of each epoch. A run shorter than one epoch
    has none: its panel says so, with the final ``val_acc`` and ``test_acc`` where
    the history carries them (as ``history.json`` does).

    Parameters
    ----------
    runs : dict
        One history as ``train`` returns it, or several keyed by a label
        (``{"fixed LR": stats, "LR decay": stats_decay}``) to overlay them.
    """
    from matplotlib.ticker import MaxNLocator

    labelled = cast(Mapping[str, History], {"": runs} if "loss_history" in runs else runs)
    fig = _figure(figsize=(10, 8), layout="constrained")
    loss_ax, acc_ax = fig.subplots(2, 1)
    for label, stats in labelled.items():
        prefix = f"{label} " if label else ""
        loss_ax.plot(stats["loss_history"], label=label or "loss", linewidth=0.8)
        epochs = range(1, len(stats["train_acc_history"]) + 1)
        if not epochs:
            continue
        acc_ax.plot(
            epochs, stats["train_acc_history"], label=f"{prefix}train (an epoch's last batch)"
        )
        if stats["val_acc_history"]:
            acc_ax.plot(epochs, stats["val_acc_history"], label=f"{prefix}validation")
    loss_ax.set(title="Loss history", xlabel="Iteration", ylabel="Loss")
    acc_ax.set(title="Classification accuracy history", xlabel="Epoch", ylabel="Accuracy")
    acc_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.legend()
    if acc_ax.get_lines():
        acc_ax.legend()
    else:
        _no_epoch_note(acc_ax, labelled)
    return fig


def _no_epoch_note(ax: Axes, labelled: Mapping[str, History]) -> None:
    """Say in an empty accuracy panel why it is empty, with the final accuracies known."""
    lines = []
    for label, stats in labelled.items():
        iterations = len(stats["loss_history"])
        finals = [
            f"{name} {float(cast(float, stats[key])):.4f}"
            for key, name in (("val_acc", "validation"), ("test_acc", "test"))
            if stats.get(key) is not None
        ]
        head = f"{label}: " if label else ""
        tail = f"; final accuracy: {', '.join(finals)}" if finals else ""
        lines.append(f"{head}{iterations} iterations{tail}")
    text = "No epoch completed: accuracies are recorded at the end of each epoch.\n"
    ax.text(0.5, 0.5, text + "\n".join(lines), ha="center", va="center",
            transform=ax.transAxes)  # fmt: skip
    ax.set(xticks=[], yticks=[])


def plot_weights(W1: Array, image_shape: tuple[int, int, int] = (28, 28, 1)) -> Figure:
    """The first-layer weights, one image per hidden unit.

    Parameters
    ----------
    W1 : array, shape (D, H)
        First-layer weights of any backend, with ``D = prod(image_shape)``.
    image_shape : tuple, default (28, 28, 1)
    """
    W1 = to_numpy(W1)
    images = W1.reshape(*image_shape, -1).transpose(3, 0, 1, 2)
    return _grid_figure(images, f"First-layer weights ({W1.shape[1]} hidden units)")


def plot_digits(
    X: ArrayLike,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    columns: int | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of images, from rows of pixels or images of any backend.

    ``columns`` images a row (default: a square grid); ``title`` defaults to the count.
    """
    images = to_numpy(X).reshape(-1, *image_shape)
    return _grid_figure(images, title or f"{images.shape[0]} images", columns=columns)


def plot_misclassified(
    images: ArrayLike,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str] | None = None,
    most: int = 100,
    columns: int = 10,
) -> Figure:
    """The images read wrongly, the first ``most`` in order, each with its true and
    predicted class.

    Parameters
    ----------
    images : array, shape (N, 28, 28, 1) or (N, 784)
        Pixels of any backend (raw 0..255, or any range: each image is shown scaled).
    y_true, y_pred : array of int, shape (N,)
    class_names : sequence of str, optional
        Names of the classes (default: their numbers).
    most : int, default 100
    columns : int, default 10
    """
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    shown = wrong[:most]
    images = to_numpy(images).reshape(y_true.shape[0], 28, 28)[shown]
    names = list(class_names) if class_names is not None else None

    def name(label: int) -> str:
        return names[label][:12] if names is not None else str(label)

    rows = max(math.ceil(len(shown) / columns), 1)
    fig = _figure(figsize=(columns * 1.1, rows * 1.3 + 0.5), layout="constrained")
    title = f"Misclassified: {len(wrong):,} of {y_true.shape[0]:,} images"
    fig.suptitle(title + (f" (the first {len(shown)})" if len(shown) < len(wrong) else ""))
    for ax in np.atleast_1d(fig.subplots(rows, columns)).ravel():
        ax.axis("off")
    for ax, image, i in zip(fig.axes, images, shown, strict=False):
        ax.imshow(image, cmap="gray")
        ax.set_title(f"true {name(y_true[i])}\nread {name(y_pred[i])}", fontsize=7)
    if not len(shown):
        fig.axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    return fig


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str] | None = None) -> Figure:
    """A confusion matrix, true classes down, predicted across, with counts."""
    matrix = np.asarray(matrix)
    C = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(C)]
    fig = _figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="Images")
    ax.set(
        xticks=range(C),
        yticks=range(C),
        xticklabels=names,
        yticklabels=names,
        xlabel="Predicted",
        ylabel="True",
        title=f"Confusion matrix (accuracy {np.trace(matrix) / matrix.sum():.4f})",
    )
    threshold = matrix.max() / 2
    for i in range(C):
        for j in range(C):
            color = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    return fig


def plot_trials(rows: Sequence[Mapping[str, JSON]]) -> Figure:
    """A search's validation accuracy trial by trial, with the best so far.

    Parameters
    ----------
    rows : sequence of dict
        Trials with ``number``, ``state`` and ``value``, as ``xpnet tune`` records them.
    """
    from matplotlib.ticker import MaxNLocator

    fig = _figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    done = [r for r in rows if r["state"] == "COMPLETE"]
    numbers = [r["number"] for r in done]
    values = [r["value"] for r in done]
    ax.plot(numbers, values, "o", label="finished")
    ax.step(numbers, np.maximum.accumulate(values) if values else [], where="post",
            label="best so far")  # fmt: skip
    pruned = [r["number"] for r in rows if r["state"] == "PRUNED"]
    if pruned:
        low = min(values, default=0.0)
        ax.plot(pruned, [low] * len(pruned), "x", color="gray", label="pruned (at the bottom)")
    ax.set(title="Search", xlabel="Trial", ylabel="Validation accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no trial 0.5
    ax.legend()
    return fig


def plot_hyperparameters(
    rows: Sequence[Mapping[str, JSON]], log_scaled: Mapping[str, bool]
) -> Figure:
    """Validation accuracy against each searched hyperparameter, one panel each.

    Parameters
    ----------
    rows : sequence of dict
        Trials, as for :func:`plot_trials`.
    log_scaled : dict of str to bool
        The hyperparameters to show, and whether each was searched on a log scale.
    """
    names = list(log_scaled)
    columns = min(len(names), 3) or 1
    fig = _figure(figsize=(4 * columns, 3.2 * math.ceil(len(names) / columns) + 0.5),
                  layout="constrained")  # fmt: skip
    axes = np.atleast_1d(fig.subplots(math.ceil(len(names) / columns) or 1, columns)).ravel()
    done = [r for r in rows if r["state"] == "COMPLETE"]
    for ax, name in zip(axes, names, strict=False):
        ax.plot([r[name] for r in done], [r["value"] for r in done], "o", alpha=0.7)
        ax.set(
            xlabel=name,
            ylabel="Validation accuracy",
            xscale="log" if log_scaled[name] else "linear",
        )
        if log_scaled[name] and done:
            _readable_log_ticks(ax.xaxis, *ax.get_xlim())
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.suptitle("Validation accuracy by hyperparameter")
    return fig


def _readable_log_ticks(axis: Axis, low: float, high: float, most: int = 4) -> None:
    """About ``most`` labelled ticks on a log axis from ``low`` to ``high``, spaced so
    that their labels (``2e-04``) never overlap; the minor ticks unlabelled.

    Ticks are digits times a power of ten: powers of ten first, then 2 and 5, then the
    other digits, each kept only if it is far enough from those already kept.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    gap = math.log10(high / low) / most
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    kept: list[float] = []
    for digits in ((1,), (2, 5), (3, 4, 6, 7, 8, 9)):
        for value in sorted(d * 10.0**k for k in decades for d in digits):
            far = all(abs(math.log10(value / other)) >= gap for other in kept)
            if low <= value <= high and far:
                kept.append(value)
    axis.set_major_locator(FixedLocator(sorted(kept)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0e}"))
    axis.set_minor_formatter(NullFormatter())


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write ``fig`` as a PNG, atomically."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)


def _grid_figure(
    images: np.ndarray, title: str, padding: int = 3, columns: int | None = None
) -> Figure:
    N, H, W = images.shape[:3]
    columns = columns or math.ceil(math.sqrt(N))  # as many rows as the images fill
    grid = visualize_grid(images, padding=padding, columns=columns).astype("uint8")
    # The cells after the last image show the page, not a black block.
    unused = np.zeros(grid.shape[:2], dtype=bool)
    first_unused = N % columns
    if first_unused:
        unused[-H:, first_unused * (W + padding) - padding :] = True
    # 8 inches wide, as tall as the grid's shape wants, and room for the title
    fig = _figure(figsize=(8, 8 * grid.shape[0] / grid.shape[1] + 0.5), layout="constrained")
    ax = fig.subplots()
    if grid.shape[2] == 1:
        ax.imshow(np.ma.masked_array(grid[..., 0], unused), cmap="gray")
    else:
        ax.imshow(np.concatenate([grid, 255 * ~unused[..., None].astype("uint8")], axis=2))
    ax.set_title(title)
    ax.axis("off")
    return fig
