"""Pictures: every figure renders to a PNG that shows its data, without a display."""

from __future__ import annotations

import itertools
import re

import matplotlib.image
import numpy as np
import pytest
from matplotlib.image import AxesImage

from xpnet import plots

#: The least share of a panel's pixels that each line, marker set or group of texts must
#: change; an image, which fills its panel, must change most of them.
MIN_DRAWN, MIN_IMAGE = 0.002, 0.5


def assert_shows_data(fig, path, panels=None):
    """``fig``, saved to ``path``, shows its data inside each of ``panels`` (default: all
    of ``fig``'s axes but colour bars): there, the PNG differs from the same figure
    saved with any one line, marker set or image hidden, or with the texts placed on
    the axes (the confusion matrix's counts, a note) hidden.

    Axes with their frame, ticks, labels, title and legend but no data, or with data
    that draws nothing, leave the two PNGs the same inside the panel.
    """
    if panels is None:
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert panels, "the figure has no panels"
    plots.save_figure(fig, path)
    shown = matplotlib.image.imread(path)[..., :3]
    # Agg draws on whole pixels: the figure's size in pixels, rounded down.
    assert shown.shape[:2] == (int(fig.bbox.height), int(fig.bbox.width))
    hidden_path = path.with_name(f"hidden-{path.name}")
    for ax in panels:
        box = ax.get_window_extent()  # display pixels from the bottom left; the frame inset
        rows = slice(shown.shape[0] - int(box.y1) + 3, shown.shape[0] - int(box.y0) - 3)
        cols = slice(int(box.x0) + 3, int(box.x1) - 3)
        groups = [[artist] for artist in (*ax.lines, *ax.images, *ax.collections)]
        groups += [list(ax.texts)] if ax.texts else []
        assert groups, f"{path.name}: panel {ax.get_title()!r} holds no data"
        for group in groups:
            for artist in group:
                artist.set_visible(False)
            try:
                plots.save_figure(fig, hidden_path)
            finally:
                for artist in group:
                    artist.set_visible(True)
            hidden = matplotlib.image.imread(hidden_path)[..., :3]
            changed = np.any(shown[rows, cols] != hidden[rows, cols], axis=-1)
            least = MIN_IMAGE if isinstance(group[0], AxesImage) else MIN_DRAWN
            assert changed.mean() > least, (
                f"{path.name}: in panel {ax.get_title()!r}, {group[0]} draws nothing "
                f"({changed.sum()} of {changed.size} pixels)"
            )


def history(seed):
    rng = np.random.default_rng(seed)
    return {
        "loss_history": list(2.3 * np.exp(-np.arange(200) / 50) + 0.1 * rng.random(200)),
        "train_acc_history": [0.5, 0.8, 0.9],
        "val_acc_history": [0.45, 0.75, 0.85],
    }


def test_history_overlays_runs(tmp_path):
    runs = {"fixed LR": history(0), "LR decay": history(1)}
    fig = plots.plot_history(runs)
    loss_ax, acc_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["fixed LR", "LR decay"]
    assert len(acc_ax.get_lines()) == 4
    for line, run in zip(loss_ax.get_lines(), runs.values(), strict=True):
        np.testing.assert_array_equal(line.get_ydata(), run["loss_history"])
    accuracies = [
        run[key] for run in runs.values() for key in ("train_acc_history", "val_acc_history")
    ]
    for line, expected in zip(acc_ax.get_lines(), accuracies, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), expected)
    assert_shows_data(fig, tmp_path / "history.png")


def test_single_history(tmp_path):
    fig = plots.plot_history(history(0))
    loss_ax, _ = fig.axes
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_ydata(), history(0)["loss_history"])
    assert_shows_data(fig, tmp_path / "h.png")


def test_weights_digits_and_confusion(tmp_path, backend):
    from xpnet import resolve_backend

    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((784, 12))
    digits = rng.random((9, 784))
    matrix = rng.integers(0, 50, (10, 10))
    figures = {
        "w.png": plots.plot_weights(resolve_backend(backend).asarray(W1)),
        "d.png": plots.plot_digits(digits),
        "c.png": plots.plot_confusion(matrix),
    }
    for name, fig in figures.items():
        assert_shows_data(fig, tmp_path / name)
    # Each grid's first cell is its first image, scaled to 0..255; the matrix is as given.
    for name, first in [("w.png", W1[:, 0]), ("d.png", digits[0])]:
        (image,) = figures[name].axes[0].get_images()
        scaled = 255 * (first - first.min()) / np.ptp(first)
        np.testing.assert_array_equal(
            image.get_array()[:28, :28], scaled.reshape(28, 28).astype("uint8")
        )
    (image,) = figures["c.png"].axes[0].get_images()
    np.testing.assert_array_equal(image.get_array(), matrix)
    counts = [text.get_text() for text in figures["c.png"].axes[0].texts]
    assert counts == [str(count) for count in matrix.ravel()]


def test_history_labels_the_batch_accuracy_and_counts_whole_epochs():
    fig = plots.plot_history(history(0))
    _, acc_ax = fig.axes
    labels = [t.get_text() for t in acc_ax.get_legend().get_texts()]
    assert labels == ["train (an epoch's last batch)", "validation"]
    fig.canvas.draw()
    ticks = [t for t in acc_ax.get_xticks() if acc_ax.get_xlim()[0] <= t <= acc_ax.get_xlim()[1]]
    assert ticks
    assert all(float(t).is_integer() for t in ticks)
    np.testing.assert_array_equal(acc_ax.get_lines()[0].get_xdata(), [1, 2, 3])


def test_weights_leave_no_empty_rows(tmp_path):
    W1 = np.random.default_rng(0).standard_normal((784, 175))
    fig = plots.plot_weights(W1)
    (image,) = fig.axes[0].get_images()
    pixels = image.get_array()
    assert pixels.shape == (13 * 31 - 3, 14 * 31 - 3)  # 13 rows of 14, 28 pixels + 3 apart
    # The 7 cells after the 175th image are blank page, not black.
    assert pixels.mask[-28:, 7 * 31 - 3 :].all()
    assert not pixels.mask[:-28].any()


def test_confusion_names_the_classes():
    matrix = np.diag([5, 6, 7])
    fig = plots.plot_confusion(matrix, ["T-shirt/top", "Trouser", "Pullover"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["T-shirt/top", "Trouser", "Pullover"]


def test_a_run_shorter_than_an_epoch_says_so_with_its_final_accuracies(tmp_path):
    short = {**history(0), "train_acc_history": [], "val_acc_history": []}
    fig = plots.plot_history({**short, "val_acc": 0.9512, "test_acc": 0.9498})
    _, acc_ax = fig.axes
    assert not acc_ax.get_lines()
    (note,) = acc_ax.texts
    assert "No epoch completed" in note.get_text()
    assert "200 iterations; final accuracy: validation 0.9512, test 0.9498" in note.get_text()
    assert_shows_data(fig, tmp_path / "short.png")
    # Without final accuracies (a history as train returns it), the note still explains.
    (note,) = plots.plot_history(short).axes[1].texts
    assert note.get_text().endswith("200 iterations")


def trial_rows(count, low, high, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"number": i, "state": "COMPLETE", "value": 0.9 + 0.01 * rng.random(),
         "learning_rate": float(10 ** rng.uniform(np.log10(low), np.log10(high)))}
        for i in range(count)
    ]  # fmt: skip


def visible_tick_labels(ax):
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]


def test_trials_are_counted_in_whole_numbers():
    fig = plots.plot_trials(trial_rows(3, 1e-4, 1e-2))
    fig.canvas.draw()
    ticks = [float(t.get_position()[0]) for t in visible_tick_labels(fig.axes[0])]
    assert ticks == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("low", "high"), [(1e-6, 1e-3), (1e-4, 1e-2), (5e-4, 2e-3), (2.8e-4, 7.5e-4), (1.5e-6, 3e-6)]
)
def test_log_scaled_hyperparameters_have_a_few_labels_that_never_overlap(low, high):
    fig = plots.plot_hyperparameters(trial_rows(6, low, high), {"learning_rate": True})
    fig.canvas.draw()
    labels = visible_tick_labels(fig.axes[0])
    assert 1 <= len(labels) <= 5, [t.get_text() for t in labels]
    boxes = sorted((t.get_window_extent() for t in labels), key=lambda box: box.x0)
    assert all(left.x1 < right.x0 for left, right in itertools.pairwise(boxes))
    assert all(re.fullmatch(r"\de-\d\d", t.get_text()) for t in labels)


def test_the_confusion_colour_bar_says_what_it_counts():
    fig = plots.plot_confusion(np.diag([5, 6, 7]))
    colour_bar = fig.axes[1]
    assert colour_bar.get_ylabel() == "Images"


def test_misclassified_digits_show_each_image_with_its_true_and_predicted_class(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (30, 28, 28, 1)).astype(np.float32)
    y_true = np.arange(30) % 10
    y_pred = y_true.copy()
    y_pred[[3, 7, 21]] = [4, 1, 0]
    fig = plots.plot_misclassified(images, y_true, y_pred, [f"class {c}" for c in range(10)])
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == [
        "true class 3\nread class 4",
        "true class 7\nread class 1",
        "true class 1\nread class 0",
    ]
    np.testing.assert_array_equal(shown[1].images[0].get_array(), images[7, ..., 0])
    assert fig.texts[0].get_text() == "Misclassified: 3 of 30 images"
    assert_shows_data(fig, tmp_path / "misclassified.png", panels=shown)


def test_misclassified_digits_say_how_many_of_how_many_are_shown():
    y_true = np.zeros(300, dtype=int)
    y_pred = np.ones(300, dtype=int)
    fig = plots.plot_misclassified(np.zeros((300, 784)), y_true, y_pred, most=12, columns=4)
    assert sum(bool(ax.images) for ax in fig.axes) == 12
    assert fig.texts[0].get_text() == "Misclassified: 300 of 300 images (the first 12)"
    none = plots.plot_misclassified(np.zeros((5, 784)), y_true[:5], y_true[:5])
    assert none.texts[0].get_text() == "Misclassified: 0 of 5 images"
    assert not any(ax.images for ax in none.axes)
