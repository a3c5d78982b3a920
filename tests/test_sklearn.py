"""The scikit-learn estimator: conformance, array API dispatch, and the ecosystem."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import pickle
import pydoc
import signal
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="needs pip install scikit-learn")

import joblib  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._array_api import yield_namespace_device_dtype_combinations  # noqa: E402
from sklearn.utils._testing import _array_api_for_tests  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from xpnet.errors import TrainingDivergedError, TrainingInterrupted  # noqa: E402
from xpnet.sklearn import TwoLayerClassifier  # noqa: E402

pytestmark = pytest.mark.sklearn


@pytest.fixture(autouse=True)
def array_api_strict_as_scikit_learn_runs_it():
    """scikit-learn's own helpers need array-api-strict's data-dependent shapes (unique)."""
    xps = pytest.importorskip("array_api_strict")
    before = xps.get_array_api_strict_flags()
    xps.reset_array_api_strict_flags()
    yield
    xps.set_array_api_strict_flags(**before)


@parametrize_with_checks(
    [
        TwoLayerClassifier(random_state=0),
        TwoLayerClassifier(solver="adam", dropout=0.2, random_state=0),
    ]
)
def test_scikit_learn_conformance(estimator, check):
    check(estimator)


def test_array_api_checks_run_in_ci():
    """scikit-learn skips its array API checks without SCIPY_ARRAY_API; CI must not."""
    if os.environ.get("CI"):
        assert os.environ.get("SCIPY_ARRAY_API") == "1", "nox -s sklearn sets SCIPY_ARRAY_API=1"


def blobs(n=300, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=12,
        n_informative=6,
        n_classes=3,
        class_sep=2.0,
        random_state=seed,
    )
    return X, y


@pytest.mark.parametrize(
    ("namespace", "device_name", "dtype_name"), list(yield_namespace_device_dtype_combinations())
)
def test_array_api_inputs_match_numpy(namespace, device_name, dtype_name):
    """Fitted on another library (dispatch on), the estimator lives and answers there,
    and agrees with the NumPy fit."""
    xp, device = _array_api_for_tests(namespace, device_name, dtype_name)
    X, y = blobs()
    X = X.astype(dtype_name or "float64")
    model = TwoLayerClassifier(hidden_size=16, max_iter=30, random_state=0)
    reference = clone(model).fit(X, y)
    X_xp, y_xp = xp.asarray(X, device=device), xp.asarray(y, device=device)
    with sklearn.config_context(array_api_dispatch=True):
        fitted = clone(model).fit(X_xp, y_xp)
        probabilities = fitted.predict_proba(X_xp)
        predictions = fitted.predict(X_xp)
        score = fitted.score(X_xp, y_xp)
    for array in (*fitted.coefs_, *fitted.intercepts_, probabilities, predictions):
        assert type(array).__module__.split(".")[0] == type(X_xp).__module__.split(".")[0]
        assert _device(array) == _device(X_xp)
    tolerance = 1e-9 if X.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(_numpy(probabilities), reference.predict_proba(X), atol=tolerance)
    np.testing.assert_array_equal(_numpy(predictions), reference.predict(X))
    assert score == pytest.approx(reference.score(X, y))
    assert fitted.loss_curve_ == pytest.approx(reference.loss_curve_, rel=tolerance * 10)


def _numpy(array):
    from xpnet import to_numpy

    return to_numpy(array)


def _device(array):
    from xpnet.backend import device_of

    return str(device_of(array))


def test_any_labels_through_classes_(tmp_path):
    X, y = blobs()
    names = np.array(["cat", "dog", "eel"])[y]
    model = TwoLayerClassifier(hidden_size=16, max_iter=30, random_state=0).fit(X, names)
    assert list(model.classes_) == ["cat", "dog", "eel"]
    assert set(model.predict(X)) <= {"cat", "dog", "eel"}
    odd = np.array([-3, 10, 42])[y]
    assert list(TwoLayerClassifier(max_iter=5, random_state=0).fit(X, odd).classes_) == [-3, 10, 42]


def test_partial_fit_trains_an_epoch_at_a_time():
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=16, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X, y)
    for _ in range(5):
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert model.n_iter_ == 5
    assert len(model.loss_curve_) == 5
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_early_stopping_keeps_the_best_epoch():
    X, y = blobs(600)
    settings = {"hidden_size": 16, "early_stopping": True, "random_state": 0}
    model = TwoLayerClassifier(max_iter=300, n_iter_no_change=5, **settings).fit(X, y)
    assert model.n_iter_ < 300
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert len(model.validation_scores_) == model.n_iter_
    best = int(np.argmax(model.validation_scores_)) + 1  # the first epoch of the best score
    assert best < model.n_iter_, "the best epoch must not be the last, or nothing is restored"
    # The same fit stopped after the best epoch (patience too long to stop it earlier) has
    # the parameters the early-stopped fit must have gone back to.
    stopped = TwoLayerClassifier(max_iter=best, n_iter_no_change=best + 1, **settings).fit(X, y)
    assert stopped.validation_scores_ == model.validation_scores_[:best]
    for kept, expected in zip(model.coefs_ + model.intercepts_,
                              stopped.coefs_ + stopped.intercepts_, strict=True):  # fmt: skip
        np.testing.assert_array_equal(kept, expected)


def test_random_state_reproduces_a_fit():
    X, y = blobs()
    first = TwoLayerClassifier(hidden_size=16, max_iter=10, random_state=3).fit(X, y)
    again = TwoLayerClassifier(hidden_size=16, max_iter=10, random_state=3).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), again.predict_proba(X))


def test_in_a_pipeline_a_grid_search_and_cross_validation():
    X, y = blobs(400)
    pipeline = make_pipeline(
        StandardScaler(), TwoLayerClassifier(max_iter=40, learning_rate_init=0.05, random_state=0)
    )
    assert pipeline.fit(X, y).score(X, y) > 0.85
    search = GridSearchCV(
        pipeline,
        {
            "twolayerclassifier__hidden_size": [8, 32],
            "twolayerclassifier__learning_rate_init": [0.01, 0.1],
        },
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert search.best_score_ > 0.8
    assert len(search.cv_results_["params"]) == 4
    scores = cross_val_score(clone(pipeline), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.7


def test_clone_pickle_and_joblib_round_trips(tmp_path):
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=16, max_iter=20, random_state=0).fit(X, y)
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(clone(model), "net_")
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_the_same_on_torch_tensors_under_array_api_dispatch(tmp_path):
    torch = pytest.importorskip("torch")
    X, y = blobs(400)
    X_t, y_t = torch.asarray(X), torch.asarray(y)
    with sklearn.config_context(array_api_dispatch=True):
        pipeline = make_pipeline(
            StandardScaler(),
            TwoLayerClassifier(max_iter=40, learning_rate_init=0.05, random_state=0),
        ).fit(X_t, y_t)
        assert isinstance(pipeline.predict(X_t), torch.Tensor)
        assert pipeline.score(X_t, y_t) > 0.85
        search = GridSearchCV(pipeline, {"twolayerclassifier__hidden_size": [8, 32]}, cv=3).fit(
            X_t, y_t
        )
        assert isinstance(search.best_estimator_[-1].coefs_[0], torch.Tensor)
        scores = cross_val_score(clone(pipeline), X_t, y_t, cv=3)
        assert scores.min() > 0.7
        joblib.dump(pipeline, tmp_path / "pipeline.joblib")
        loaded = joblib.load(tmp_path / "pipeline.joblib")
        assert torch.equal(loaded.predict(X_t), pipeline.predict(X_t))


def test_numpy_input_trains_on_the_backend_asked_for():
    torch = pytest.importorskip("torch")
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=16, max_iter=10, backend="torch", random_state=0)
    model.fit(X, y)
    assert isinstance(model.coefs_[0], torch.Tensor)
    assert isinstance(model.predict(X), np.ndarray)  # NumPy in, NumPy out


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_adam_and_dropout_learn_and_ignore_sgds_momentum(solver):
    X, y = blobs()
    model = TwoLayerClassifier(solver=solver, learning_rate_init=1e-2, dropout=0.3,
                               momentum=0.9, max_iter=30, random_state=0).fit(X, y)  # fmt: skip
    assert model.net_.last_training["settings"]["optimizer"] == solver
    assert model.net_.last_training["settings"]["momentum"] == 0.0
    assert model.net_.last_training["settings"]["dropout"] == 0.3
    assert model.score(X, y) > 0.9


def test_reg_is_the_l2_term_and_weight_decay_adamws_with_every_solver():
    """reg reaches the training as the loss's L2 term whatever the solver; weight_decay
    as AdamW's decoupled decay, and, like momentum for SGD, only for the solver that has it."""
    X, y = blobs()
    for solver in ("sgd", "adam", "adamw"):
        model = TwoLayerClassifier(solver=solver, reg=1e-3, weight_decay=0.01, max_iter=2,
                                   random_state=0).fit(X, y)  # fmt: skip
        recorded = model.net_.last_training["settings"]
        assert recorded["reg"] == 1e-3
        assert recorded["weight_decay"] == (0.01 if solver == "adamw" else 0.0), solver


def test_mlpclassifiers_learning_rate_says_where_the_schedule_is():
    with pytest.raises(TypeError, match="unexpected keyword arguments") as info:
        TwoLayerClassifier(learning_rate="constant")  # MLPClassifier's meaning
    message = str(info.value)
    assert "schedule='step' with learning_rate_decay=1.0" in message
    assert "learning_rate_init" in message


# A failed fit or partial_fit changes nothing: the settings are checked before any state.


def _fitted_state(model):
    return {
        "classes_": model.classes_.tolist(),
        "n_features_in_": model.n_features_in_,
        "n_iter_": model.n_iter_,
        "loss_curve_": list(model.loss_curve_),
        "W1": np.asarray(model.net_.params["W1"]).copy(),
        "rng": model.net_.rng.bit_generator.state,  # where the next run's seed comes from
        "predictions": model.predict(blobs()[0]).tolist(),
    }


def _assert_unchanged(model, before):
    after = _fitted_state(model)
    np.testing.assert_array_equal(after.pop("W1"), before["W1"])
    assert after == {k: v for k, v in before.items() if k != "W1"}


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"learning_rate_init": -1}, ValueError, "learning_rate_init"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"dropout": 1.0}, ValueError, "dropout"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"early_stopping": "no"}, TypeError, "early_stopping"),
        ({"shuffle": "no"}, TypeError, "shuffle"),
        ({"tol": float("nan")}, ValueError, "tol"),
        ({"solver": "lbfgs"}, ValueError, "solver"),
        ({"hidden_size": 10**12}, ValueError, r"needs .* more than the"),
        ({"solver": "adam", "momentum": 0.9}, None, None),  # momentum is SGD's: not used
    ],
)
def test_a_refit_with_bad_settings_leaves_the_fitted_model(changes, error, message):
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=8, max_iter=3, random_state=0).fit(X, y)
    before = _fitted_state(model)
    model.set_params(**changes)
    if error is None:
        assert model.fit(X, y).n_iter_ == 3
        return
    with pytest.raises(error, match=message):  # new columns and labels: both must stay
        model.fit(X[:, :5], np.array(["a", "b", "c"])[y])
    _assert_unchanged(model, before)
    if "hidden_size" in changes:  # partial_fit trains the fitted network, of its own size
        return
    with pytest.raises(error, match=message):  # after set_params, partial_fit: no ZeroDivision
        model.partial_fit(X, y)
    _assert_unchanged(model, before)


def test_a_failed_first_partial_fit_does_not_lock_the_classes():
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=8, batch_size=0, random_state=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(model, "classes_")
    model.set_params(batch_size=32).partial_fit(X, y, classes=[0, 1, 2, 3])
    assert model.classes_.tolist() == [0, 1, 2, 3]


def test_a_fit_that_diverges_keeps_the_previous_model():
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=8, max_iter=3, random_state=0).fit(X, y)
    before = _fitted_state(model)
    with pytest.raises(TrainingDivergedError):
        model.set_params(learning_rate_init=1e300, momentum=0.0).partial_fit(X * 1e10, y)
    _assert_unchanged(model, before)


class _CtrlCAtFirstLine(io.StringIO):
    """Standard output that presses Ctrl-C ``presses`` times, a real SIGINT to this
    process each, when the first line is printed (verbose: the first epoch's)."""

    def __init__(self, presses):
        super().__init__()
        self.presses = presses

    def write(self, text):
        first = not self.getvalue()
        written = super().write(text)
        for _ in range(self.presses if first else 0):
            signal.raise_signal(signal.SIGINT)
        return written


@pytest.mark.parametrize(
    ("method", "presses"),
    # Once: the run stops after the step under way (TrainingInterrupted); twice: at once
    # (KeyboardInterrupt). A one-epoch partial_fit has no step left to stop before.
    [("fit", 1), ("fit", 2), ("partial_fit", 2)],
)
def test_ctrl_c_goes_through_and_leaves_the_fitted_model(method, presses):
    X, y = blobs()
    model = TwoLayerClassifier(hidden_size=8, max_iter=3, random_state=0).fit(X, y)
    before = _fitted_state(model)
    model.set_params(max_iter=50, verbose=True)
    printed = _CtrlCAtFirstLine(presses)
    with contextlib.redirect_stdout(printed), pytest.raises(KeyboardInterrupt) as info:
        getattr(model, method)(X, y)
    assert info.type is (TrainingInterrupted if presses == 1 else KeyboardInterrupt)
    assert printed.getvalue().startswith("epoch 1: loss" if method == "fit" else "epoch 4: loss")
    _assert_unchanged(model, before)


#: The estimator's own parameters, after the hyperparameters of the table.
OWN_PARAMETERS = ["max_iter", "tol", "n_iter_no_change", "early_stopping", "validation_fraction",
                  "dtype", "random_state", "backend", "device", "compile", "verbose"]  # fmt: skip


def test_every_parameter_is_named_in_the_signature_help_get_params_and_clone():
    from xpnet.hyperparameters import rows

    table = [row.estimator or row.name for row in rows() if row.estimator is not None]
    names = [*table, *OWN_PARAMETERS]
    parameters = inspect.signature(TwoLayerClassifier).parameters
    assert list(parameters) == names
    assert {p.kind for p in parameters.values()} == {inspect.Parameter.KEYWORD_ONLY}
    shown = pydoc.render_doc(TwoLayerClassifier, renderer=pydoc.plaintext)
    signature_line = shown.splitlines()[3]
    assert signature_line.startswith(" |  TwoLayerClassifier(*, hidden_size: 'int' = 100, ")
    for name in names:
        assert f" {name}: " in signature_line, f"help() shows {name} in the signature"
        assert f"\n |  {name} : " in shown, f"help() documents {name}"
    values = {name: f"<{name}>" for name in names}  # set as given, checked by fit
    model = TwoLayerClassifier(**values)
    assert model.get_params() == values
    assert clone(model).get_params() == values
    assert TwoLayerClassifier().set_params(**values).get_params() == values


def test_complex_torch_input_is_refused_under_array_api_dispatch():
    """Complex NumPy input is refused; complex torch input must not lose its imaginary part."""
    torch = pytest.importorskip("torch")
    X, y = blobs(60)
    Z = torch.asarray(X) + 1j * torch.asarray(X)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="Complex data not supported"):
            TwoLayerClassifier(max_iter=2).fit(Z, torch.asarray(y))
        fitted = TwoLayerClassifier(max_iter=2, random_state=0).fit(torch.asarray(X), y)
        with pytest.raises(ValueError, match="Complex data not supported"):
            fitted.predict(Z)
    with pytest.raises(ValueError, match="Complex data not supported"):
        TwoLayerClassifier(max_iter=2).fit(X + 1j * X, y)


# Stopping and converging as MLPClassifier does, side by side with it


def mlp(**settings):
    """scikit-learn's MLPClassifier fitted on a small problem of 3 classes, its warnings
    kept (a ConvergenceWarning is part of what is compared)."""
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(200, 8, n_informative=4, n_classes=3, random_state=0)
    settings = {"hidden_layer_sizes": (8,), "learning_rate_init": 0.05, "random_state": 0,
                **settings}  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MLPClassifier(**settings).fit(X, y)
    return model, [w.category for w in caught]


@pytest.mark.parametrize(
    ("early_stopping", "tol", "n_iter_no_change"),
    [(False, 1e-3, 2), (True, 0.0, 2), (True, 1e-2, 1)],
)
def test_the_stopping_rule_stops_where_mlpclassifier_stopped(early_stopping, tol,
                                                             n_iter_no_change):  # fmt: skip
    """MLPClassifier's own curve (losses, or validation accuracies with ties among them),
    followed epoch by epoch by xpnet's rule: it stops at the epoch MLPClassifier stopped
    at, not before."""
    from xpnet.sklearn._stopping import Stopper

    reference, _ = mlp(early_stopping=early_stopping, tol=tol, n_iter_no_change=n_iter_no_change,
                       max_iter=300)  # fmt: skip
    assert reference.n_iter_ < 300  # it stopped by the rule
    curve = reference.validation_scores_ if early_stopping else reference.loss_curve_
    stopper = Stopper(tol, n_iter_no_change)
    stopper.watch({name: np.zeros(1) for name in ("W1", "b1", "W2", "b2")})
    said = [stopper.stop(loss, score if early_stopping else None)
            for loss, score in zip(reference.loss_curve_, curve, strict=True)]  # fmt: skip
    assert said == [False] * (reference.n_iter_ - 1) + [True]


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("n_iter_no_change", [1, 3])
def test_no_improvement_is_counted_as_mlpclassifier_counts_it(early_stopping, n_iter_no_change):
    """With a tolerance no epoch but the first can meet, MLPClassifier stops after
    ``n_iter_no_change + 1`` epochs without improvement: epoch ``n_iter_no_change + 2``."""
    X, y = make_classification(200, 8, n_informative=4, n_classes=3, random_state=0)
    settings = {"tol": 1e9, "n_iter_no_change": n_iter_no_change,
                "early_stopping": early_stopping, "max_iter": 50}  # fmt: skip
    reference, _ = mlp(**settings)
    model = TwoLayerClassifier(hidden_size=8, random_state=0, **settings).fit(X, y)
    assert model.n_iter_ == reference.n_iter_ == n_iter_no_change + 2


def test_fit_warns_a_convergence_warning_at_max_iter_as_mlpclassifier_does():
    from sklearn.exceptions import ConvergenceWarning

    X, y = make_classification(200, 8, n_informative=4, n_classes=3, random_state=0)
    _, warned = mlp(max_iter=2)
    assert warned == [ConvergenceWarning]
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 .*raise max_iter") as caught:
        TwoLayerClassifier(hidden_size=8, max_iter=2, random_state=0).fit(X, y)
    assert caught[0].filename == __file__  # it points at the call of fit


@pytest.mark.parametrize("early_stopping", [False, True])
def test_no_convergence_warning_when_the_rule_stops_at_max_iter_or_from_partial_fit(
    early_stopping,
):
    """Stopped by the rule at the last epoch allowed (epoch 3 with n_iter_no_change=1):
    no warning, as MLPClassifier gives none; nor from partial_fit, one epoch a call."""
    X, y = make_classification(200, 8, n_informative=4, n_classes=3, random_state=0)
    settings = {"tol": 1e9, "n_iter_no_change": 1, "max_iter": 3, "early_stopping": early_stopping}
    reference, warned = mlp(**settings)
    assert (reference.n_iter_, warned) == (3, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TwoLayerClassifier(hidden_size=8, random_state=0, **settings).fit(X, y).n_iter_ == 3
        model = TwoLayerClassifier(hidden_size=8, max_iter=1, random_state=0)
        for _ in range(3):
            model.partial_fit(X, y, classes=[0, 1, 2])
