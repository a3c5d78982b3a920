"""The network against the lab's reference values, on every backend."""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest
from conftest import CORRECT_LOSS, CORRECT_SCORES

from xpnet import TwoLayerNet, eval_numerical_gradient, rel_error, to_numpy
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.testing import TOLERANCES


def expected_path(backend):
    """The path ``compile="auto"`` takes, written out here (not asked of xpnet): JAX's
    jit on every device, CUDA graphs for torch on CUDA, the eager loop elsewhere."""
    if backend.name == "jax":
        return "jax.jit + lax.scan"
    if backend.name == "torch" and backend.device.type == "cuda":
        return "CUDA graph"
    return "eager loop"


def test_params_have_the_lab_shapes_on_the_backend(toy_net, xp):
    shapes = {name: tuple(p.shape) for name, p in toy_net.params.items()}
    assert shapes == {"W1": (4, 10), "b1": (10,), "W2": (10, 3), "b2": (3,)}
    for p in toy_net.params.values():
        assert toy_net.backend.owns(p)
        assert p.dtype == xp.float64
    assert not np.any(to_numpy(toy_net.params["b1"]))


def test_scores_match_the_lab(toy_net, toy_data):
    X, _ = toy_data
    scores = toy_net.loss(X)
    assert scores.shape == (5, 3)
    assert np.sum(np.abs(scores - CORRECT_SCORES)) < 1e-7


def test_loss_matches_the_lab(toy_net, toy_data):
    X, y = toy_data
    loss, _ = toy_net.loss(X, y, reg=0.1)
    assert isinstance(loss, float)
    assert abs(loss - CORRECT_LOSS) < 1e-12


def test_backend_arrays_in_give_backend_arrays_out(toy_net, toy_data):
    X, y = toy_data
    X_dev, y_dev = toy_net.backend.asarray(X), toy_net.backend.asarray(y)
    scores = toy_net.loss(X_dev)
    assert toy_net.backend.owns(scores)
    np.testing.assert_allclose(to_numpy(scores), CORRECT_SCORES, atol=1e-8)
    _, grads = toy_net.loss(X_dev, y_dev, reg=0.1)
    assert all(toy_net.backend.owns(g) for g in grads.values())
    labels = toy_net.predict(X_dev)
    assert toy_net.backend.owns(labels)
    np.testing.assert_array_equal(to_numpy(labels), np.argmax(CORRECT_SCORES, axis=1))


@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_gradients_match_numerical_gradients(toy_net, toy_data, name):
    X, y = toy_data
    _, grads = toy_net.loss(X, y, reg=0.05)
    assert grads[name].shape == tuple(toy_net.params[name].shape)

    original = toy_net.params[name]

    def f(W):  # W is the perturbed parameter: the same array, or a copy where immutable
        toy_net.params[name] = W
        return toy_net.loss(X, y, reg=0.05)[0]

    numerical = eval_numerical_gradient(f, original, verbose=False)
    toy_net.params[name] = original
    assert rel_error(numerical, grads[name]) < 1e-8


def test_predict_returns_the_best_scoring_class(toy_net, toy_data):
    X, _ = toy_data
    labels = toy_net.predict(X)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, np.argmax(CORRECT_SCORES, axis=1))


def test_score_is_the_mean_accuracy_by_the_lab_scores(toy_net, toy_data):
    """scikit-learn's ``score``: the fraction of rows whose best class (by the lab's
    reference scores, best classes [2, 0, 0, 0, 0]) is their label; labels and rows from
    the host or the backend, a float either way."""
    X, _ = toy_data
    y = np.array([2, 0, 1, 0, 2])  # rows 0, 1 and 3 right
    expected = float(np.mean(np.argmax(CORRECT_SCORES, axis=1) == y))
    assert expected == 0.6
    backend = toy_net.backend
    for rows, labels in [(X, y), (backend.asarray(X), backend.asarray(y)), (X, y.astype(np.uint8))]:
        score = toy_net.score(rows, labels)
        assert type(score) is float
        assert score == pytest.approx(expected, rel=1e-6)  # JAX: 3 * (1/5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, y: (X[:, :3], y), r"X must have shape \(N, 4\)"),
        (lambda X, y: (X[:0], y[:0]), "X is empty"),
        (lambda X, y: (np.where(X > 0, np.nan, X), y), "X contains NaN"),
        (lambda X, y: (X, y[:4]), r"y must have shape \(5,\)"),
        (lambda X, y: (X, y.astype(float)), "y must hold integer class labels"),
        (lambda X, y: (X, y + 1), r"y: labels must lie in \[0, 3\)"),
    ],
)
def test_score_checks_rows_as_predict_and_labels_as_train(toy_net, toy_data, change, message):
    with pytest.raises(ValueError, match=message):
        toy_net.score(*change(*toy_data))


def test_toy_training_reaches_the_lab_loss(backend, toy_data):
    X, y = toy_data
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend)
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100, verbose=False)
    assert len(stats["loss_history"]) == 100
    assert all(isinstance(v, float) for v in stats["loss_history"])
    # The handout got 0.017143643532923733.
    assert stats["loss_history"][-1] < 0.05
    assert stats["loss_history"][-1] == pytest.approx(0.017143643532923733, rel=1e-9)
    # One epoch per iteration here (5 samples, batch 200): accuracy recorded every step.
    assert len(stats["train_acc_history"]) == len(stats["val_acc_history"]) == 100
    assert stats["val_acc_history"][-1] == 1.0


def test_verbose_prints_the_loss_every_100_iterations(backend, toy_data, capsys):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
    net.train(X, y, X, y, num_iters=201, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "iteration 0 / 201",
        "iteration 100 / 201",
        "iteration 200 / 201",
    ]


def test_momentum_trains_the_toy_problem(backend, toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
    plain = net.train(X, y, X, y, learning_rate=1e-2, num_iters=50, learning_rate_decay=1.0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
    heavy = net.train(
        X, y, X, y, learning_rate=1e-2, num_iters=50, learning_rate_decay=1.0, momentum=0.9
    )
    assert heavy["loss_history"][-1] < plain["loss_history"][-1]


def test_seed_makes_initialisation_and_training_reproducible(backend):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 4, 40)
    runs = []
    for _ in range(2):
        net = TwoLayerNet(6, 8, 4, std=1e-1, backend=backend, seed=7)
        runs.append(net.train(X, y, X, y, num_iters=20, batch_size=10))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_matches_numpy_float64(backend, dtype):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 20)), rng.integers(0, 5, 300)

    def trajectory(backend: str, dtype: str) -> np.ndarray:
        net = TwoLayerNet(20, 30, 5, std=1e-1, backend=backend, dtype=dtype, seed=42)
        stats = net.train(
            X, y, X, y, learning_rate=0.05, num_iters=100, batch_size=50, momentum=0.9
        )
        return np.asarray(stats["loss_history"])

    if (backend.name, dtype) == ("numpy", "float64"):
        pytest.skip("numpy float64 is the reference the others are compared with")
    reference = trajectory("numpy", "float64")
    np.testing.assert_allclose(trajectory(backend, dtype), reference, rtol=TOLERANCES[dtype])


def test_float32_network_computes_in_float32(backend, toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, backend=backend, dtype="float32", seed=0)
    assert all(p.dtype == net.xp.float32 for p in net.params.values())
    _, grads = net.loss(X, y)
    assert all(g.dtype == np.float32 for g in grads.values())


# Bad input: a ValueError that names the problem, before any parameter changes.

BAD_TRAINING_INPUTS = {
    "X with the wrong number of features": (
        lambda X, y: (X[:, :3], y),
        r"X must have shape \(N, 4\)",
    ),
    "X with three dimensions": (lambda X, y: (X[:, :, None], y), r"X must have shape"),
    "X as one row": (lambda X, y: (X[0], y), r"X must have shape"),
    "a NaN in X": (lambda X, y: (np.where(np.eye(5, 4) > 0, np.nan, X), y), "NaN or infinity"),
    "an infinity in X": (lambda X, y: (np.where(np.eye(5, 4) > 0, np.inf, X), y), "NaN"),
    "a label above the classes": (lambda X, y: (X, np.array([0, 1, 2, 3, 1])), r"\[0, 3\)"),
    "a negative label": (lambda X, y: (X, np.array([0, -1, 2, 2, 1])), r"from -1 to 2"),
    "float labels": (lambda X, y: (X, y.astype(float)), "integer class labels"),
    "X and y of different lengths": (lambda X, y: (X, y[:4]), r"y must have shape \(5,\)"),
    "labels as a matrix": (lambda X, y: (X, y[:, None]), r"y must have shape"),
    "strings in X": (lambda X, y: (X.astype(str), y), "real numbers"),
}


@pytest.mark.parametrize("case", BAD_TRAINING_INPUTS)
def test_bad_training_data_is_rejected_before_any_change(toy_net, toy_data, case):
    corrupt, message = BAD_TRAINING_INPUTS[case]
    X_bad, y_bad = corrupt(*toy_data)
    before = {name: to_numpy(p).copy() for name, p in toy_net.params.items()}
    with pytest.raises(ValueError, match=message):
        toy_net.train(X_bad, y_bad, *toy_data, num_iters=5)
    val_message = message.replace("X must", "X_val must").replace("y must", "y_val must")
    with pytest.raises(ValueError, match=val_message) as info:
        toy_net.train(*toy_data, X_bad, y_bad, num_iters=5)
    assert "X_val" in str(info.value) or "y_val" in str(info.value)  # names the argument
    for name, p in toy_net.params.items():
        np.testing.assert_array_equal(to_numpy(p), before[name])


BAD_HYPERPARAMETERS = {
    "batch_size": [0, -5],
    "num_iters": [0, -1],
    "learning_rate": [0.0, -1e-3, float("nan"), float("inf")],
    "learning_rate_decay": [0.0, 1.5, -0.5],
    "reg": [-1.0, float("nan")],
    "weight_decay": [-1.0, float("nan")],
    "momentum": [-0.1, 1.0, 2.0],
    "dropout": [-0.1, 1.0],
    "schedule": ["linear"],
    "optimizer": ["rmsprop"],
    "compile": ["yes", 1],
    "threads": [0, -2],
}
#: Values of the wrong type: a TypeError, as Python's own functions raise.
WRONG_TYPES = {
    "batch_size": [2.5, True, "5"],
    "num_iters": [1.0, "5"],  # None is the default, 100
    "epochs": [1.0, "2"],
    "weight_decay": ["0.1"],
    "learning_rate": ["0.1", None, 1j],
    "shuffle": ["no", 1],
    "augment": ["affine"],
    "progress": ["yes"],
    "on_epoch": [3],
    "verbose": ["no"],
    "threads": [1.0, "2", True],
}


def _cases(table):
    return [(name, value) for name, values in table.items() for value in values]


@pytest.mark.parametrize(("name", "value"), _cases(BAD_HYPERPARAMETERS))
def test_bad_hyperparameters_are_rejected_before_any_change(toy_net, toy_data, name, value):
    before = to_numpy(toy_net.params["W1"]).copy()
    with pytest.raises(ValueError, match=name):
        toy_net.train(*toy_data, *toy_data, **{"num_iters": 5, name: value})
    np.testing.assert_array_equal(to_numpy(toy_net.params["W1"]), before)


@pytest.mark.parametrize(("name", "value"), _cases(WRONG_TYPES))
def test_settings_of_the_wrong_type_are_type_errors_before_any_change(
    toy_net, toy_data, name, value
):
    before = to_numpy(toy_net.params["W1"]).copy()
    with pytest.raises(TypeError, match=name):
        toy_net.train(*toy_data, *toy_data, **{"num_iters": 5, name: value})
    np.testing.assert_array_equal(to_numpy(toy_net.params["W1"]), before)


@pytest.mark.parametrize("sizes", [(0, 10, 3), (4, 0, 3), (4, 10, 0), (-4, 10, 3)])
def test_non_positive_sizes_are_rejected(backend, sizes):
    with pytest.raises(ValueError, match="must be a positive integer"):
        TwoLayerNet(*sizes, backend=backend)


@pytest.mark.parametrize("sizes", [(4.5, 10, 3), (4, "10", 3), (4, None, 3)])
def test_sizes_that_are_not_integers_are_type_errors(sizes):
    with pytest.raises(TypeError, match="must be a positive integer"):
        TwoLayerNet(*sizes)
    with pytest.raises(TypeError, match=r"seed must be a non-negative integer, got 1\.5"):
        TwoLayerNet(4, 10, 3, seed=1.5)


def test_negative_std_is_rejected():
    with pytest.raises(ValueError, match="std"):
        TwoLayerNet(4, 10, 3, std=-1.0)


def test_numpy_integer_sizes_are_accepted():
    # The handout's tuning cell passes sizes drawn by np.random.choice.
    net = TwoLayerNet(np.int64(4), np.int64(10), 3)
    assert net.sizes == (4, 10, 3)


def test_unknown_dtype_is_rejected(backend):
    with pytest.raises(ValueError, match="dtype must be one of"):
        TwoLayerNet(4, 10, 3, backend=backend, dtype="float16")


@pytest.mark.backend("torch")
def test_arrays_of_another_library_are_rejected(toy_data):
    torch = pytest.importorskip("torch")
    net = TwoLayerNet(4, 10, 3)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        net.predict(torch.asarray(toy_data[0]))


# Diverging and interrupted training: a clear stop, consistent parameters, the history kept.


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
@pytest.mark.parametrize("keyword", ["optimiser", "seed", "hidden_size"])
def test_train_refuses_keywords_that_are_not_its_settings(toy_net, toy_data, keyword):
    """A misspelt setting, or one of the network's, is a TypeError that names it."""
    with pytest.raises(TypeError, match=rf"train\(\) got \['{keyword}'\]: it takes .*'optimizer'"):
        toy_net.train(*toy_data, *toy_data, num_iters=2, **{keyword: 3})


def test_a_diverging_run_stops_with_the_last_finite_parameters(backend, toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate") as info:
        net.train(X, y, X, y, learning_rate=1e12, num_iters=50)
    err = info.value
    assert "learning rate" in str(err)
    assert f"diverged at iteration {err.iteration}" in str(err)
    assert len(err.history["loss_history"]) == err.iteration
    assert all(np.isfinite(err.history["loss_history"]))
    # the parameters of the last check with finite values: a run of as many steps
    checked = int(re.search(r"keeps its parameters from iteration (\d+)", str(err)).group(1))
    reference = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
    if checked:
        reference.train(X, y, X, y, learning_rate=1e12, num_iters=checked)
    for name, p in net.params.items():
        assert np.all(np.isfinite(to_numpy(p)))
        np.testing.assert_array_equal(to_numpy(p), to_numpy(reference.params[name]))
        np.testing.assert_array_equal(to_numpy(p), to_numpy(err.params[name]))


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_divergence_is_caught_between_checks(backend):
    """A run whose loss overflows partway through an epoch keeps the history before it."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 5)) * 100, rng.integers(0, 3, 2000)
    net = TwoLayerNet(5, 8, 3, std=1.0, backend=backend, seed=0)
    with pytest.raises(TrainingDivergedError) as info:
        net.train(X, y, X, y, learning_rate=10.0, momentum=0.9, num_iters=500, batch_size=10)
    assert info.value.iteration < 500
    assert np.all(np.isfinite(to_numpy(net.params["W1"])))


def interrupt_at(iteration):
    """A progress callback that presses Ctrl-C once, at the first call at or after ``iteration``."""
    pressed = []

    def progress(it, loss, learning_rate):
        if it >= iteration and not pressed:
            pressed.append(it)
            os.kill(os.getpid(), signal.SIGINT)

    return progress


def test_ctrl_c_handler_is_restored_after_training(toy_data):
    before = signal.getsignal(signal.SIGINT)
    net = TwoLayerNet(4, 10, 3, seed=0)
    net.train(*toy_data, *toy_data, num_iters=3)
    assert signal.getsignal(signal.SIGINT) is before


# Options of the fast recipe: He initialisation, shuffled epochs, the cosine schedule.


def test_he_initialisation_scales_by_fan_in(backend):
    net = TwoLayerNet(800, 400, 10, backend=backend, seed=0, init="he")
    assert np.std(to_numpy(net.params["W1"])) == pytest.approx(np.sqrt(2 / 800), rel=0.02)
    assert np.std(to_numpy(net.params["W2"])) == pytest.approx(np.sqrt(2 / 400), rel=0.05)
    with pytest.raises(ValueError, match="init must be one of"):
        TwoLayerNet(4, 10, 3, backend=backend, init="xavier")


def test_cosine_schedule_anneals_to_zero(backend, toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, backend=backend, seed=0)
    rates = []
    net.train(
        X,
        y,
        X,
        y,
        learning_rate=0.1,
        num_iters=5,
        schedule="cosine",
        progress=lambda it, loss, lr: rates.append(lr),
    )
    expected = [0.1 * (1 + np.cos(np.pi * t / 5)) / 2 for t in range(5)]
    np.testing.assert_allclose(rates, expected)
    with pytest.raises(ValueError, match="schedule must be one of"):
        net.train(X, y, X, y, schedule="linear")


def test_a_decay_with_the_cosine_schedule_is_refused_before_any_change(toy_net, toy_data):
    """The decay is the step schedule's: the cosine schedule would ignore it silently."""
    before = to_numpy(toy_net.params["W1"]).copy()
    with pytest.raises(ValueError, match=r"learning_rate_decay=0\.5 is the step schedule's"):
        toy_net.train(*toy_data, *toy_data, num_iters=3, schedule="cosine",
                      learning_rate_decay=0.5)  # fmt: skip
    np.testing.assert_array_equal(to_numpy(toy_net.params["W1"]), before)
    assert toy_net.last_training is None
    toy_net.train(*toy_data, *toy_data, num_iters=3, schedule="cosine")  # no decay given
    assert toy_net.last_training["settings"]["learning_rate_decay"] == 1.0


# The compiled path: the same steps, K at a time, agreeing with the eager loop.


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "settings",
    [
        {"momentum": 0.9, "shuffle": False, "schedule": "step", "learning_rate_decay": 0.9},
        {"momentum": 0.0, "shuffle": True, "schedule": "cosine"},
    ],
    ids=["momentum-step", "plain-cosine"],
)
def test_compiled_and_eager_runs_agree(backend, dtype, settings):
    if expected_path(backend) == "eager loop":
        pytest.skip(f"{backend} has no compiled path; test_compile_true_without_one_is_refused")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((600, 20)), rng.integers(0, 5, 600)
    runs = {}
    for compile in (False, True):
        net = TwoLayerNet(20, 30, 5, std=1e-1, backend=backend, dtype=dtype, seed=42)
        stats = net.train(
            X, y, X[:100], y[:100], learning_rate=0.05, num_iters=250, batch_size=50,
            compile=compile, **settings,
        )  # fmt: skip
        runs[compile] = (stats, {k: to_numpy(p) for k, p in net.params.items()}, net.last_training)
    (eager, eager_params, eager_info), (compiled, compiled_params, compiled_info) = runs.values()
    assert eager_info["path"] == "eager loop"
    assert compiled_info["path"] == expected_path(backend)
    rtol = TOLERANCES[dtype]
    np.testing.assert_allclose(compiled["loss_history"], eager["loss_history"], rtol=rtol)
    np.testing.assert_allclose(compiled["val_acc_history"], eager["val_acc_history"], atol=0.011)
    assert len(compiled["train_acc_history"]) == len(eager["train_acc_history"]) == 20
    for name, p in eager_params.items():
        scale = np.max(np.abs(p))
        np.testing.assert_allclose(compiled_params[name], p, atol=rtol * scale * 10)


def test_auto_picks_the_compiled_path_where_there_is_one(backend, toy_data):
    net = TwoLayerNet(4, 10, 3, backend=backend, seed=0)
    net.train(*toy_data, *toy_data, num_iters=3)
    assert net.last_training["path"] == expected_path(backend)


def test_compile_true_without_one_is_refused(backend, toy_data):
    net = TwoLayerNet(4, 10, 3, backend=backend, seed=0)
    if expected_path(backend) != "eager loop":
        net.train(*toy_data, *toy_data, num_iters=3, compile=True)
        assert net.last_training["path"] == expected_path(backend)
        return
    before = to_numpy(net.params["W1"]).copy()
    with pytest.raises(ValueError, match="has no compiled training path"):
        net.train(*toy_data, *toy_data, num_iters=3, compile=True)
    np.testing.assert_array_equal(to_numpy(net.params["W1"]), before)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_compile_takes_auto_or_a_bool(toy_net, toy_data, value):
    with pytest.raises(ValueError, match=r"compile must be one of \('auto', True, False\)"):
        toy_net.train(*toy_data, *toy_data, num_iters=3, compile=value)


def test_ctrl_c_stops_after_a_whole_chunk(backend):
    """On any path: the parameters are those of a run of exactly the steps taken."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((1000, 8)), rng.integers(0, 3, 1000)
    settings = {"learning_rate": 0.05, "num_iters": 400, "batch_size": 4, "momentum": 0.9}
    net = TwoLayerNet(8, 6, 3, std=0.1, backend=backend, seed=3)
    with pytest.raises(TrainingInterrupted) as info:
        net.train(X, y, X, y, progress=interrupt_at(120), **settings)
    done = info.value.iterations
    assert 120 < done < 400
    assert done - 1 == 120 or expected_path(backend) != "eager loop"
    assert len(info.value.history["loss_history"]) == net.last_training["iterations"] == done
    reference = TwoLayerNet(8, 6, 3, std=0.1, backend=backend, seed=3)
    stats = reference.train(X, y, X, y, **{**settings, "num_iters": done})
    np.testing.assert_allclose(info.value.history["loss_history"], stats["loss_history"])
    for name, p in net.params.items():
        np.testing.assert_allclose(to_numpy(p), to_numpy(reference.params[name]), rtol=1e-12)


# Hostile input: every case a ValueError that says what, before any change.


def test_an_std_whose_scores_would_overflow_is_refused():
    with pytest.raises(ValueError, match=r"std=1e\+200 makes the network's scores overflow"):
        TwoLayerNet(20, 10, 4, std=1e200)
    with pytest.raises(ValueError, match="overflow float32"):
        TwoLayerNet(20, 10, 4, std=1e20, dtype="float32")
    TwoLayerNet(20, 10, 4, std=1e20)  # float64 takes it


def test_a_loaded_net_trains_in_float32_whatever_std_it_was_first_drawn_with(tmp_path, toy_data):
    """Its weights exist: the std they were drawn with (fine in float64, too large for
    float32's range) is history, not a reason to refuse training."""
    net = TwoLayerNet(4, 10, 3, std=1e20, seed=0)  # float64 takes it
    net.params = TwoLayerNet(4, 10, 3, seed=0).params  # trained weights, small ones
    net.train(*toy_data, *toy_data, num_iters=2)
    net.save(tmp_path / "model.npz")
    loaded = TwoLayerNet.load(tmp_path / "model.npz", dtype="float32")
    assert (loaded.init, loaded.std) == ("gaussian", 1e20)
    loaded.train(*toy_data, *toy_data, num_iters=2)
    assert loaded.last_training["iterations"] == 2


def test_a_bad_size_is_told_before_a_missing_library_or_gpu():
    for name in ("cupy", "nope"):  # a GPU this machine may lack, a library that is not one
        with pytest.raises(ValueError, match="input_size must be a positive integer, got 0"):
            TwoLayerNet(0, 10, 3, backend=name)
        with pytest.raises(ValueError, match="dtype must be one of"):
            TwoLayerNet(4, 10, 3, backend=name, dtype="float16")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 100_000_000}, r"a 784-100000000-10 network .* needs [\d.,]+ GiB"),
        ({"std": 10**400}, "std must be a finite real number"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ],
)
def test_bad_network_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TwoLayerNet(784, kwargs.pop("hidden_size", 10), 10, **kwargs)


def test_a_fraction_is_a_real_std():
    from fractions import Fraction

    net = TwoLayerNet(4, 10, 3, std=Fraction(1, 10000), seed=0)
    assert 0 < np.std(net.params["W1"]) < 1e-3


def test_a_batch_too_large_for_memory_is_refused_before_any_change(toy_net, toy_data):
    before = to_numpy(toy_net.params["W1"]).copy()
    with pytest.raises(
        ValueError, match=r"batch_size=10000000000 with hidden_size=10 needs .* more"
    ):
        toy_net.train(*toy_data, *toy_data, batch_size=10_000_000_000)
    np.testing.assert_array_equal(to_numpy(toy_net.params["W1"]), before)


def test_values_beyond_float32_are_not_called_nan(toy_data):
    X, _ = toy_data
    net = TwoLayerNet(4, 10, 3, dtype="float32", seed=0)
    with pytest.raises(ValueError, match=r"values up to 1e\+300 .* beyond the range of"):
        net.predict(np.where(np.eye(5, 4) > 0, 1e300, X))


def test_ranges_never_print_an_infinite_bound(toy_net, toy_data):
    with pytest.raises(ValueError, match=r"learning_rate must be in \(0, inf\), got -1") as info:
        toy_net.train(*toy_data, *toy_data, learning_rate=-1.0)
    assert "inf]" not in str(info.value)


def test_a_bad_progress_callback_is_refused_before_any_step(toy_net, toy_data):
    before = to_numpy(toy_net.params["W1"]).copy()
    with pytest.raises(TypeError, match="progress must be a callable"):
        toy_net.train(*toy_data, *toy_data, num_iters=5, progress="yes")
    np.testing.assert_array_equal(to_numpy(toy_net.params["W1"]), before)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64", "int8", "int32"])
def test_labels_of_any_integer_dtype_train_on_every_backend(backend, toy_data, dtype):
    X, y = toy_data
    reference = TwoLayerNet(4, 10, 3, std=1e-1, seed=0).train(X, y, X, y, num_iters=5)
    for labels in (y.astype(dtype), backend.asarray(y.astype(dtype))):
        net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, seed=0)
        stats = net.train(X, labels, X, labels, num_iters=5)
        np.testing.assert_allclose(stats["loss_history"], reference["loss_history"], rtol=1e-12)


@pytest.mark.backend("torch")
def test_torch_autograd_never_reaches_the_parameters(toy_data):
    torch = pytest.importorskip("torch")
    X, y = toy_data
    X_t = torch.tensor(X, requires_grad=True)
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend="torch", seed=0)
    net.train(X_t, torch.as_tensor(y), X_t, torch.as_tensor(y), num_iters=20)
    scores = net.loss(X_t)
    _, grads = net.loss(X_t, torch.as_tensor(y))
    for tensor in (*net.params.values(), scores, *grads.values()):
        assert not tensor.requires_grad
        assert tensor.grad_fn is None


@pytest.mark.backend("torch")
@pytest.mark.parametrize("device", ["cpu", "cpu:0"])
def test_device_names_that_mean_the_same_device_are_one(toy_data, device):
    torch = pytest.importorskip("torch")
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, backend="torch", device=device, seed=0)
    X_t = torch.as_tensor(X, device="cpu")
    assert net.predict(X_t).shape == (5,)
    net.train(X_t, torch.as_tensor(y), X_t, torch.as_tensor(y), num_iters=2)
    assert net.loss(net.params["W1"].T).shape == (10, 3)  # rows made of its own tensors


# Dropout, and the recipes beyond the lab.


def test_dropout_is_off_at_prediction(toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, seed=0)
    net.train(X, y, X, y, num_iters=5, dropout=0.5)
    W1, b1, W2, b2 = (net.params[name] for name in ("W1", "b1", "W2", "b2"))
    scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2  # every hidden unit, none scaled
    np.testing.assert_allclose(net.loss(X), scores, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), np.argmax(scores, axis=1))
    assert net.last_training["settings"]["dropout"] == 0.5


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_a_dropout_rate_outside_its_range_is_refused(toy_net, toy_data, dropout):
    with pytest.raises(ValueError, match="dropout must be in"):
        toy_net.train(*toy_data, *toy_data, num_iters=2, dropout=dropout)


def test_compiled_and_eager_agree_with_dropout_and_distortions(backend):
    from xpnet.augment import AUGMENTATIONS

    if expected_path(backend) == "eager loop":
        pytest.skip(f"{backend} has no compiled path")
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 784)), rng.integers(0, 10, 256)
    settings = {"num_iters": 40, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam",
                "dropout": 0.3, "augment": AUGMENTATIONS["affine+elastic"]}  # fmt: skip
    runs = []
    for compile in (False, True):
        net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=0)
        runs.append(net.train(X, y, X, y, compile=compile, **settings)["loss_history"])
    np.testing.assert_allclose(runs[1], runs[0], rtol=TOLERANCES["float64"])
