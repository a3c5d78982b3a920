"""Pictures: every figure renders to a non-blank PNG, without a display."""

from __future__ import annotations

import matplotlib.image
import numpy as np

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
