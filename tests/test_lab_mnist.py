"""The lab's MNIST results (sections 7, 8, 10 and 11 of the handout), on every backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.neural_net import NETWORK_FIELDS
from xpnet.recipes import FAST, LAB
from xpnet.training import ComputeSettings

pytestmark = pytest.mark.mnist


def accuracy(net, X, y):
    return float(np.mean(net.predict(X) == y))


def train_keywords(settings):
    """The keywords of ``TwoLayerNet.train`` that follow ``settings`` (the network's own
    fields are the net's)."""
    fields = dataclasses.fields(settings)
    return {f.name: getattr(settings, f.name) for f in fields if f.name not in NETWORK_FIELDS}


@pytest.mark.slow
def test_learning_rate_decay_beats_a_fixed_rate(backend, mnist_rows):
    """Sections 7 and 8: the handout got 0.8922 (fixed) and 0.9432 (decay)."""
    X_train, y_train, X_val, y_val, _, _ = mnist_rows
    common = {"num_iters": 2000, "batch_size": 200, "reg": 0.25}
    fixed = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    stats = fixed.train(
        X_train, y_train, X_val, y_val, learning_rate=1e-4, learning_rate_decay=1.0, **common
    )
    decay = TwoLayerNet(784, 50, 10, backend=backend, seed=0)
    stats_decay = decay.train(
        X_train, y_train, X_val, y_val, learning_rate=1e-3, learning_rate_decay=0.95, **common
    )
    fixed_acc, decay_acc = accuracy(fixed, X_val, y_val), accuracy(decay, X_val, y_val)
    assert 0.85 < fixed_acc < decay_acc
    assert decay_acc > 0.93
    assert stats["loss_history"][0] == pytest.approx(np.log(10), abs=1e-3)
    assert np.mean(stats_decay["loss_history"][-100:]) < np.mean(stats["loss_history"][-100:])
    assert len(stats["val_acc_history"]) == 2000 // (55000 // 200)


@pytest.mark.slow
def test_the_labs_best_settings_reach_its_accuracy_in_float32(backend, mnist_rows):
    """Sections 10 and 11: the handout got 0.9806 validation and 0.9785 test accuracy.

    In float64 on NumPy this is the handout's own cell, run by ``test_handout.py``;
    float64 on the other backends follows NumPy's trajectory
    (``test_neural_net.py::test_training_matches_numpy_float64``).
    """
    X_train, y_train, X_val, y_val, X_test, y_test = mnist_rows
    net = TwoLayerNet(
        784, LAB.hidden_size, 10, std=LAB.std, backend=backend, dtype="float32", seed=0
    )
    compute = ComputeSettings(backend, dtype="float32")
    settings = LAB.settings(input_size=784, output_size=10, seed=0, compute=compute)
    net.train(X_train, y_train, X_val, y_val, **train_keywords(settings))
    assert accuracy(net, X_val, y_val) >= 0.974
    assert accuracy(net, X_test, y_test) >= 0.963


@pytest.mark.slow
def test_the_fast_recipe_reaches_098(backend, mnist_dir):
    """xpnet train --recipe fast: 0.98 validation accuracy within its three epochs."""
    from xpnet.data import read_data_sets
    from xpnet.preprocess import PREPROCESSORS

    X_train, y_train, X_val, y_val, _, _ = read_data_sets(mnist_dir)
    X_train, X_val = PREPROCESSORS[FAST.preprocessing](X_train, X_val)
    compute = ComputeSettings(backend, dtype="float32")
    settings = FAST.settings(input_size=784, output_size=10, seed=0, compute=compute)
    net = TwoLayerNet(784, FAST.hidden_size, 10, backend=backend, dtype="float32", seed=0,
                      init=FAST.init)  # fmt: skip
    history = net.train(X_train, y_train, X_val, y_val, **train_keywords(settings))
    assert max(history["val_acc_history"]) >= 0.98


@pytest.mark.parametrize("name", ["best", "best-augmented"])
def test_the_best_recipes_run_a_few_hundred_iterations(name, mnist_dir):
    """A smoke test: the long recipes' code paths, for 300 iterations of 2,000 images."""
    import dataclasses

    from xpnet.pipeline import prepare_data, run
    from xpnet.recipes import RECIPES

    data = prepare_data("scale_and_center", data_dir=mnist_dir)
    data = dataclasses.replace(data, X_train=data.X_train[:2000], y_train=data.y_train[:2000])
    recipe = dataclasses.replace(RECIPES[name], num_iters=300, hidden_size=256)
    result = run(recipe, data=data, dtype="float32", seed=0)
    assert result.net.last_training["settings"]["optimizer"] == "adamw"
    assert result.history["loss_history"][-1] < result.history["loss_history"][0]
    assert result.val_acc > 0.8
