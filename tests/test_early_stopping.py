"""Early stopping and the best epoch: Keras's count on the validation accuracy, on every
backend and runner, the record that says both, and the command line that prints them."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.backend import to_numpy
from xpnet.pipeline import plan_run
from xpnet.recipes import RECIPES
from xpnet.training._stopping import BestEpoch
from xpnet.tune import train_command

EPOCHS = 40


def _data():
    """A tiny problem whose validation accuracy stops improving within a few epochs: the
    validation labels are noisy, so it wanders below its best."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(np.int64)
    X_val = rng.normal(size=(50, 5))
    y_val = (X_val[:, 0] + rng.normal(size=50) > 0).astype(np.int64)
    return X, y, X_val, y_val


def _train(backend, **settings):
    """A fresh network trained on :func:`_data`; its history and the network."""
    net = TwoLayerNet(5, 8, 2, init="he", seed=0, backend=backend)
    options = {"learning_rate": 0.5, "batch_size": 20, "epochs": EPOCHS, **settings}
    history = net.train(*_data(), **options)
    return net, history


def _keras_stop(val_accs, patience):
    """The epoch (from 1) at whose end Keras's rule stops, and the best epoch then: an
    epoch improves when it is strictly above the best so far."""
    best, best_epoch = -1.0, 0
    for epoch, acc in enumerate(val_accs, start=1):
        if acc > best:
            best, best_epoch = acc, epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return None, best_epoch


def _host(params):
    return {name: to_numpy(p) for name, p in params.items()}


def test_stops_where_keras_does_and_keeps_the_best_epoch(backend):
    """The run stops at the epoch the rule computes from its recorded validation accuracy
    of a run of all its epochs; restore_best keeps exactly the parameters of a run trained
    to the best epoch and no further."""
    _, full = _train(backend)  # all the epochs: the validation accuracy to predict from
    expected_stop, expected_best = _keras_stop(full["val_acc_history"], patience=3)
    assert expected_stop is not None, "the problem must plateau"
    assert expected_stop < EPOCHS
    net, history = _train(backend, early_stopping=True, patience=3, restore_best=True)
    assert history["val_acc_history"] == full["val_acc_history"][:expected_stop]
    record = net.last_training
    assert (record["stopped_epoch"], record["kept_epoch"]) == (expected_stop, expected_best)
    assert record["iterations"] == expected_stop * 10 < EPOCHS * 10  # 10 steps an epoch
    best, _ = _train(backend, epochs=expected_best)
    kept, trained = _host(net.params), _host(best.params)
    for name in kept:
        np.testing.assert_array_equal(kept[name], trained[name])


def test_without_restore_best_the_last_epoch_is_kept(backend):
    """Stopped early without restore_best: the parameters of the stopping epoch, those of a
    run trained exactly that far; the record says it kept the last step's."""
    net, history = _train(backend, early_stopping=True, patience=3)
    stopped = net.last_training["stopped_epoch"]
    assert stopped == len(history["val_acc_history"]) < EPOCHS
    assert net.last_training["kept_epoch"] is None
    same, _ = _train(backend, epochs=stopped)
    for name, value in _host(net.params).items():
        np.testing.assert_array_equal(value, to_numpy(same.params[name]))


def test_on_epoch_sees_every_epoch_the_one_that_stops_the_run_included(backend):
    """on_epoch is called after every epoch the run trains, with its validation accuracy,
    the epoch at which early stopping stops it included (a search reports it)."""
    seen = []

    def on_epoch(epoch, mean_loss, val_acc):
        seen.append((epoch, val_acc))

    _, history = _train(backend, early_stopping=True, patience=3, on_epoch=on_epoch)
    accs = history["val_acc_history"]
    assert len(accs) < EPOCHS
    assert seen == [(epoch, acc) for epoch, acc in enumerate(accs, start=1)]


def test_a_patience_longer_than_the_run_runs_it_all(backend):
    """Patience beyond the run's epochs: every epoch runs; the record says it did not
    stop, and restore_best still keeps the best epoch."""
    net, history = _train(backend, early_stopping=True, patience=EPOCHS, restore_best=True)
    record = net.last_training
    assert len(history["val_acc_history"]) == EPOCHS
    assert record["stopped_epoch"] is None
    assert record["epochs"] == EPOCHS
    accs = history["val_acc_history"]
    assert record["kept_epoch"] == int(np.argmax(accs)) + 1  # the first of the best


@pytest.mark.parametrize(
    ("accs", "patience", "stop", "best"),
    [
        ([0.5, 0.6, 0.6, 0.6, 0.5, 0.9], 3, 5, 2),  # a tie with the best is no improvement
        ([0.5, 0.4, 0.6, 0.5], 1, 2, 1),
        ([0.5, 0.6, 0.7], 1, None, 3),
    ],
)
def test_the_rule_counts_as_keras_does(accs, patience, stop, best):
    """Epochs from 1; stopped at the patience-th epoch in a row not strictly above the best."""
    rule = BestEpoch(np, early_stopping=True, patience=patience, restore_best=True)
    params = {name: np.zeros(1) for name in ("W1", "b1", "W2", "b2")}
    stopped_at = next((epoch for epoch, acc in enumerate(accs, start=1)
                       if rule.update(epoch, acc, params)), None)  # fmt: skip
    assert stopped_at == stop
    record = rule.record(stop or len(accs))
    assert (record["stopped_epoch"], record["kept_epoch"]) == (stop, best)


@pytest.mark.parametrize("flag", ["early_stopping", "restore_best"])
def test_refused_without_validation_data(flag):
    X, y, _, _ = _data()
    net = TwoLayerNet(5, 8, 2, seed=0)
    with pytest.raises(ValueError, match=f"{flag}=True watches the validation accuracy.*X_val"):
        net.train(X, y, None, None, epochs=2, **{flag: True})


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"patience": 0}, ValueError, "patience"),
        ({"patience": 2.5}, TypeError, "patience"),
        ({"early_stopping": "yes"}, TypeError, "early_stopping"),
        ({"restore_best": 1.0}, TypeError, "restore_best"),
    ],
)
def test_bad_values_name_the_argument(changes, error, message):
    with pytest.raises(error, match=message):
        _train("numpy", **changes)


def test_off_changes_nothing_in_the_record():
    """Without early stopping or restore_best the record has none of their entries."""
    net, _ = _train("numpy", epochs=2)
    assert not {"stopped_epoch", "kept_epoch"} & net.last_training.keys()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xpnet.cli", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


@pytest.mark.mnist
def test_train_prints_where_it_stopped_and_what_it_kept(mnist_dir, tmp_path):
    """``xpnet train --early-stopping --patience 1 --restore-best`` prints one line with
    the epoch it stopped at and the epoch it kept, as the saved record says."""
    result = _cli("train", "--num-iters", "220", "--batch-size", "2000", "--hidden-size", "10",
                  "--learning-rate", "0.5", "--early-stopping", "--patience", "1",
                  "--restore-best", "--data-dir", str(mnist_dir), "--output-dir",
                  str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = TwoLayerNet.load(tmp_path / "model.npz").last_training
    assert record["settings"]["early_stopping"]
    assert record["settings"]["patience"] == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("early stopping:")]
    ran = (f"stopped early after epoch {record['stopped_epoch']}"
           if record["stopped_epoch"] is not None else "ran all its epochs")  # fmt: skip
    assert len(lines) == 1
    assert ran in lines[0]
    assert re.search(f"kept the parameters of epoch {record['kept_epoch']}\\b", lines[0])


@pytest.mark.mnist
def test_the_best_recipe_takes_early_stopping(mnist_dir, tmp_path):
    """``xpnet train --recipe best --early-stopping --patience 5`` is accepted (run for a
    few steps here: the recipe's 40 epochs take minutes)."""
    result = _cli("train", "--recipe", "best", "--early-stopping", "--patience", "5",
                  "--num-iters", "5", "--hidden-size", "10", "--data-dir", str(mnist_dir),
                  "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    settings = TwoLayerNet.load(tmp_path / "model.npz").last_training["settings"]
    assert (settings["early_stopping"], settings["patience"]) == (True, 5)
    assert "early stopping: ran all its epochs" in result.stdout


def test_tune_trains_its_trials_with_the_recipes_early_stopping():
    """A recipe with early stopping is what a tune trial trains with (its plan's settings),
    and the best settings' command line carries the options."""
    recipe = dataclasses.replace(RECIPES["best"], early_stopping=True, patience=5)
    plan = plan_run(recipe)
    assert (plan.settings.early_stopping, plan.settings.patience) == (True, 5)
    command = train_command(recipe, {"learning_rate": 0.01}, "mnist", "numpy", "float64", 0)
    assert "--recipe best --early-stopping --learning-rate 0.01 --patience 5" in command
