"""Pictures: every figure renders to a non-blank PNG, without a display."""

from __future__ import annotations

import itertools
import re

import matplotlib.image
import numpy as np
import pytest

from xpnet import plots


def assert_png_not_blank(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3
    assert pixels[..., :3].std() > 0.01


def history(seed):
    rng = np.random.default_rng(seed)
    return {
        "loss_history": list(2.3 * np.exp(-np.arange(200) / 50) + 0.1 * rng.random(200)),
        "train_acc_history": [0.5, 0.8, 0.9],
        "val_acc_history": [0.45, 0.75, 0.85],
    }


def test_history_overlays_runs(tmp_path):
    fig = plots.plot_history({"fixed LR": history(0), "LR decay": history(1)})
    loss_ax, acc_ax = fig.axes
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["fixed LR", "LR decay"]
    assert len(acc_ax.get_lines()) == 4
    plots.save_figure(fig, tmp_path / "history.png")
    assert_png_not_blank(tmp_path / "history.png")


def test_single_history(tmp_path):
    plots.save_figure(plots.plot_history(history(0)), tmp_path / "h.png")
    assert_png_not_blank(tmp_path / "h.png")


def test_weights_digits_and_confusion(tmp_path, backend):
    from xpnet import resolve_backend

    rng = np.random.default_rng(0)
    W1 = resolve_backend(backend).asarray(rng.standard_normal((784, 12)))
    figures = {
        "w.png": plots.plot_weights(W1),
        "d.png": plots.plot_digits(rng.random((9, 784))),
        "c.png": plots.plot_confusion(rng.integers(0, 50, (10, 10))),
    }
    for name, fig in figures.items():
        plots.save_figure(fig, tmp_path / name)
        assert_png_not_blank(tmp_path / name)


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
    plots.save_figure(fig, tmp_path / "short.png")
    assert_png_not_blank(tmp_path / "short.png")
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
