"""What a network gives back, on every backend: training without validation data,
class probabilities, and the epoch callback."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.testing import TOLERANCES

# A toy problem of 4 epochs of 6 steps: 60 rows, batches of 10.
ROWS, FEATURES, HIDDEN, CLASSES, BATCH, EPOCHS = 60, 5, 8, 3, 10, 4
PER_EPOCH = ROWS // BATCH


@pytest.fixture
def problem():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((ROWS, FEATURES)), rng.integers(0, CLASSES, ROWS)
    X_val, y_val = rng.standard_normal((20, FEATURES)), rng.integers(0, CLASSES, 20)
    return X, y, X_val, y_val


def new_net(backend):
    return TwoLayerNet(FEATURES, HIDDEN, CLASSES, std=0.1, backend=backend, seed=5)


SETTINGS = {"num_iters": EPOCHS * PER_EPOCH, "batch_size": BATCH, "learning_rate": 0.1}


def test_training_without_validation_data_records_none_and_trains_the_same(backend, problem):
    X, y, X_val, y_val = problem
    without, with_val = new_net(backend), new_net(backend)
    history = without.train(X, y, None, None, **SETTINGS)
    reference = with_val.train(X, y, X_val, y_val, **SETTINGS)
    assert history["val_acc_history"] == []
    assert len(reference["val_acc_history"]) == EPOCHS
    assert without.last_training["final_val_acc"] is None
    # Validation data are only measured: the losses and parameters are the same.
    assert history["loss_history"] == reference["loss_history"]
    assert history["train_acc_history"] == reference["train_acc_history"]
    for name, p in without.params.items():
        np.testing.assert_array_equal(to_numpy(p), to_numpy(with_val.params[name]))


def test_last_training_records_the_run(backend, problem):
    X, y, X_val, y_val = problem
    net = new_net(backend)
    assert net.last_training is None
    net.train(X, y, X_val, y_val, **SETTINGS)
    record = net.last_training
    assert record["iterations"] == EPOCHS * PER_EPOCH
    assert record["settings"]["learning_rate"] == 0.1
    assert record["path"] in ("eager loop", "jax.jit + lax.scan", "CUDA graph")


@pytest.mark.parametrize("seed", [5, None])
def test_a_pickled_network_predicts_and_trains_on_as_the_original(problem, seed):
    """Its parameters, record and random source travel with it: the next run of the
    copy is the original's (the global state, without a seed, reset for each)."""
    X, y, X_val, y_val = problem
    np.random.seed(0)
    net = TwoLayerNet(FEATURES, HIDDEN, CLASSES, std=0.1, seed=seed)
    net.train(X, y, X_val, y_val, **SETTINGS)
    again = pickle.loads(pickle.dumps(net))
    assert again.last_training == net.last_training
    assert again.dtype == net.dtype
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    runs = []
    for each in (net, again):
        np.random.seed(1)
        runs.append(each.train(X, y, None, None, **SETTINGS)["loss_history"])
    assert runs[0] == runs[1]


def test_predict_proba_is_the_softmax_of_the_scores(backend, problem):
    X, y, _, _ = problem
    net = new_net(backend)
    net.train(X, y, None, None, **SETTINGS)
    probabilities = net.predict_proba(X)
    assert isinstance(probabilities, np.ndarray)  # NumPy in, NumPy out
    assert probabilities.shape == (ROWS, CLASSES)
    scores = np.asarray(net.loss(X), np.float64)
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities, exp / exp.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.argmax(probabilities, axis=1), net.predict(X))

    on_device = net.predict_proba(net.backend.asarray(X))
    assert net.backend.owns(on_device)  # backend arrays in, backend arrays out
    np.testing.assert_array_equal(to_numpy(on_device), probabilities)


def test_predict_proba_matches_a_float64_computation_by_hand(backend, problem):
    """Every backend, NumPy included, against the lab's formulas written out in float64
    with NumPy's initial weights (the same on every backend)."""
    X, _, _, _ = problem
    p = {name: to_numpy(value) for name, value in new_net("numpy").params.items()}
    scores = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    reference = exp / exp.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        new_net(backend).predict_proba(X), reference, rtol=TOLERANCES["float64"]
    )


def test_on_epoch_sees_each_epochs_mean_loss_and_validation_accuracy(backend, problem):
    X, y, X_val, y_val = problem
    calls = []
    history = new_net(backend).train(
        X, y, X_val, y_val, on_epoch=lambda *args: calls.append(args), **SETTINGS
    )
    assert [epoch for epoch, _, _ in calls] == list(range(1, EPOCHS + 1))
    losses = np.reshape(history["loss_history"], (EPOCHS, PER_EPOCH))
    np.testing.assert_allclose([loss for _, loss, _ in calls], losses.mean(axis=1), rtol=1e-12)
    assert [val_acc for _, _, val_acc in calls] == history["val_acc_history"]
    assert all(isinstance(value, float) for _, loss, val_acc in calls for value in (loss, val_acc))


def test_on_epoch_without_validation_data_gets_none(backend, problem):
    X, y, _, _ = problem
    calls = []
    new_net(backend).train(X, y, None, None, on_epoch=lambda *args: calls.append(args), **SETTINGS)
    assert [val_acc for _, _, val_acc in calls] == [None] * EPOCHS


def test_on_epoch_returning_true_stops_at_that_epochs_end(backend, problem):
    X, y, X_val, y_val = problem
    net = new_net(backend)
    history = net.train(X, y, X_val, y_val, on_epoch=lambda epoch, *_: epoch == 2, **SETTINGS)
    assert len(history["loss_history"]) == net.last_training["iterations"] == 2 * PER_EPOCH
    assert len(history["val_acc_history"]) == 2
    # The parameters are those of a run of exactly two epochs.
    reference = new_net(backend)
    reference.train(X, y, X_val, y_val, **{**SETTINGS, "num_iters": 2 * PER_EPOCH})
    for name, p in net.params.items():
        np.testing.assert_allclose(to_numpy(p), to_numpy(reference.params[name]), rtol=1e-12)
