"""What a network gives back, on every backend: training without validation data,
class probabilities, and the epoch callback."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.errors import XpnetDeprecationWarning
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


def test_last_training_records_the_run_and_training_is_its_deprecated_name(backend, problem):
    X, y, X_val, y_val = problem
    net = new_net(backend)
    assert net.last_training is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name warns of nothing
        net.train(X, y, X_val, y_val, **SETTINGS)
        record = net.last_training
    assert record["iterations"] == EPOCHS * PER_EPOCH
    assert record["settings"]["learning_rate"] == 0.1
    with pytest.warns(
        XpnetDeprecationWarning,
        match=r"TwoLayerNet\.training is deprecated .*0\.2: use "
        r"TwoLayerNet\.last_training",
    ) as caught:
        assert net.training is record  # the old name still gives the record
    assert [w.filename for w in caught] == [__file__]  # points at the use
    with pytest.warns(XpnetDeprecationWarning, match=r"TwoLayerNet\.last_training"):
        net.training = None
    assert net.last_training is None


def test_a_network_pickled_with_the_old_attribute_unpickles_with_last_training(problem):
    X, y, X_val, y_val = problem
    net = new_net("numpy")
    net.train(X, y, X_val, y_val, **SETTINGS)
    state = net.__getstate__()
    state["training"] = state.pop("last_training")  # as xpnet pickled it before the rename

    class Old:
        def __reduce__(self):
            return object.__new__, (TwoLayerNet,), state

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = pickle.loads(pickle.dumps(Old()))
    assert isinstance(again, TwoLayerNet)
    assert again.last_training == net.last_training
    assert "training" not in vars(again)
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


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
