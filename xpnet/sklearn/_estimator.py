"""The estimator: :class:`TwoLayerClassifier`, the lab's network in scikit-learn's ways.

A fit checks every parameter, trains with :func:`xpnet.training.fit` (which returns
new parameters and changes nothing it is given), and only then sets the fitted
attributes, all at once: a fit that fails or is interrupted leaves the estimator as
it was, its network included.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xpnet import training
from xpnet._typing import DTYPES, Array, ArrayLike, Device, JSONObject, Params
from xpnet.backend import array_namespace, dtype_name, is_numpy_array
from xpnet.neural_net import TwoLayerNet
from xpnet.sklearn import _parameters
from xpnet.sklearn._dispatch import (
    backend_for,
    check_same_place,
    class_indices,
    class_labels,
    classes_of,
    is_host,
    namespace,
    refuse_complex,
)
from xpnet.sklearn._fitted import FEATURES, Features, FitAttributes, RunAttributes
from xpnet.sklearn._stopping import Stopper, validation_split, warn_not_converged
from xpnet.training import ComputeSettings, TrainSettings

if TYPE_CHECKING:
    from sklearn.utils import Tags

__all__ = ["TwoLayerClassifier"]


class TwoLayerClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The lab's two-layer network as a scikit-learn classifier.

    ``input -> affine -> ReLU -> affine -> softmax``, trained by minibatch SGD with
    momentum (or Adam, AdamW) on the softmax cross-entropy with L2 regularisation
    (optionally with dropout on the hidden layer), for up to
    ``max_iter`` epochs, stopping earlier when the training loss (or, with
    ``early_stopping``, the validation accuracy) has not improved by ``tol`` for more than
    ``n_iter_no_change`` epochs, as :class:`sklearn.neural_network.MLPClassifier` does,
    and warning a :class:`~sklearn.exceptions.ConvergenceWarning` after ``max_iter``.

    Every parameter is a keyword. The hyperparameters come first, from
    :mod:`xpnet.hyperparameters` (``learning_rate_init`` and ``solver`` there are
    ``learning_rate`` and ``optimizer``); the estimator's own follow.

    Parameters
    ----------
    HYPERPARAMETERS
    max_iter : int, default 200
        The most epochs to train.
    tol : float, default 1e-4
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified) and stop
        when its accuracy stops improving; the parameters of the best epoch are kept.
        The estimator keeps ``MLPClassifier``'s names and rule; the table's
        (``TwoLayerNet.train``, ``xpnet train``, ``tune``) map onto them as
        ``early_stopping=True`` with ``restore_best=True`` (always, here), ``patience``
        for ``n_iter_no_change``, and the validation set given instead of split off.
        The counts differ: ``patience=p`` stops at the ``p``-th epoch in a row that is
        not strictly better (Keras's count); ``n_iter_no_change=n`` at the ``n + 1``-th
        that does not improve by at least ``tol`` (scikit-learn's).
    validation_fraction : float, default 0.1
    dtype : {"float32", "float64"}, optional
        The network's dtype; by default X's (float32 stays float32, the rest float64).
    random_state : int, RandomState or None, default None
        Seeds the initialisation, the batches and the validation split.
    backend : str, default "numpy"
        Where NumPy input is trained (``"torch"``, ``"cupy"``, ...). Under array API
        dispatch, input of another library trains on that library and device instead.
    device : object, optional
        The backend's device, for NumPy input.
    compile : {"auto", True, False}, default "auto"
        As for :meth:`xpnet.TwoLayerNet.train`.
    verbose : bool, default False
        Print each epoch's loss.

    Attributes
    ----------
    classes_ : numpy.ndarray, shape (C,)
        The labels, sorted; ``predict`` answers with them.
    n_features_in_ : int
    feature_names_in_ : numpy.ndarray of str
        When X has feature names (a DataFrame).
    net_ : TwoLayerNet
        The fitted network; its arrays live in X's namespace and device.
    coefs_, intercepts_ : list of arrays
        ``[W1 (D, H), W2 (H, C)]`` and ``[b1 (H,), b2 (C,)]``, the network's.
    loss_curve_ : list of float
        The mean training loss of each epoch.
    n_iter_ : int
        Epochs trained.
    validation_scores_ : list of float or None
        Each epoch's validation accuracy, with ``early_stopping``.
    best_validation_score_ : float or None

    Notes
    -----
    A ``fit`` or ``partial_fit`` that fails, diverges or is interrupted (Ctrl-C raises
    :class:`xpnet.errors.TrainingInterrupted`, a ``KeyboardInterrupt``) leaves the
    estimator as it was before the call.
    """

    #: What each parameter may be, checked (by scikit-learn's own validation) before
    #: ``fit`` or ``partial_fit`` touches anything: the hyperparameters' ranges from
    #: their table, then the estimator's own; :class:`xpnet.training.TrainSettings`
    #: then checks the combinations and the memory.
    _parameter_constraints: ClassVar[dict[str, list[_parameters.Constraint] | str]] = {
        **_parameters.constraints(),
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "dtype": [StrOptions(set(DTYPES)), None],
        "random_state": ["random_state"],
        "backend": "no_validation",  # resolved (and checked) by ComputeSettings
        "device": "no_validation",
        "compile": [StrOptions({"auto"}), "boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        dtype: Literal["float32", "float64"] | None = None,
        random_state: int | np.random.RandomState | None = None,
        backend: str = "numpy",
        device: Device | None = None,
        compile: Literal["auto"] | bool = "auto",
        verbose: bool = False,
        # Any: each of its row's own type, which the table decides (signature() spells them).
        **hyperparameters: Any,
    ) -> None:
        # The table's hyperparameters, by their estimator names; __signature__ lists them.
        for name, value in _parameters.values(hyperparameters).items():
            setattr(self, name, value)
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.compile = compile
        self.verbose = verbose

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # Fitting: every attribute ending in "_" is set by _set_fitted, once training succeeded.

    def fit(self, X: ArrayLike, y: ArrayLike) -> TwoLayerClassifier:
        """Train a new network on ``X`` (N, D) and labels ``y`` (N,); returns self.

        Every setting is checked first; a fit that fails leaves a fitted estimator as
        it was.
        """
        self._validate_params()
        X, y, features = self._validated(X, y, reset=True)
        return self._fit_new(X, y, classes_of(y), features, self.max_iter, stop_early=True)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> TwoLayerClassifier:
        """Train one more epoch on ``X`` and ``y``; the first call needs ``classes``.

        The network, its optimiser's state excepted, carries over between calls. A
        call that fails leaves the estimator as it was, the network included.
        """
        self._validate_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y, features = self._validated(X, y, reset=first)
        if first:
            return self._fit_new(X, y, classes_of(classes), features, 1, stop_early=False)
        if classes is not None and not np.array_equal(classes_of(classes), self.classes_):
            raise ValueError(
                f"classes={classes!r} is not the same as on the first call ({self.classes_!r})"
            )
        settings = self._settings(X, len(self.classes_), 1, seed=None)
        self._set_fitted(self._train(self.net_, self.classes_, X, y, settings,
                                     continued=True, stop_early=False))  # fmt: skip
        return self

    def _fit_new(
        self, X: Array, y: Array, classes: np.ndarray, features: Features, epochs: int,
        *, stop_early: bool,
    ) -> TwoLayerClassifier:  # fmt: skip
        """Train a new network for ``epochs`` epochs on checked ``X`` and ``y`` (of
        ``classes``), then set every fitted attribute, X's ``features`` among them."""
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        settings = self._settings(X, len(classes), epochs, seed=seed)
        trained = self._train(self._new_network(settings), classes, X, y, settings,
                              continued=False, stop_early=stop_early)  # fmt: skip
        self._set_fitted({**features, "classes_": classes, "_host_input": is_host(X), **trained})
        return self

    def _validated(
        self, X: ArrayLike, y: ArrayLike, *, reset: bool
    ) -> tuple[Array, Array, Features]:
        """X and y as scikit-learn's validation checks them, and, with ``reset``, the
        fitted attributes that describe X's columns (:data:`~xpnet.sklearn._fitted.FEATURES`)."""
        xp = namespace(X)
        refuse_complex(X)
        # With reset, validation records X's columns on the estimator it checks for: a
        # copy, so that they become this estimator's only with a fit that succeeds.
        checked = copy.copy(self) if reset else self
        X, y = validate_data(checked, X, y, reset=reset, dtype=[xp.float64, xp.float32])
        check_classification_targets(y)
        found = {k: v for k, v in vars(checked).items() if k in FEATURES} if reset else {}
        features = cast(Features, found)  # as scikit-learn's validation sets them
        return X, y, features

    def _set_fitted(self, fitted: RunAttributes | FitAttributes) -> None:
        """Set the fitted attributes of a fit that succeeded, all at once; X's columns,
        when given, replace the old ones (without feature names, there are none)."""
        if "n_features_in_" in fitted:
            for name in FEATURES:
                self.__dict__.pop(name, None)
        self.__dict__.update(fitted)

    def _settings(
        self, X: Array, num_classes: int, epochs: int, *, seed: int | None
    ) -> TrainSettings:
        """The checked settings of ``epochs`` epochs on ``X``: for a new network seeded
        with ``seed``, on X's backend; for the fitted one when ``seed`` is None."""
        values = {row.name: getattr(self, _parameters.estimator_name(row))
                  for row in _parameters.estimator_rows()}  # fmt: skip
        batch_size = min(values["batch_size"], X.shape[0])
        solver = values["optimizer"]
        values |= {
            "batch_size": batch_size,
            "num_iters": epochs * max(X.shape[0] // batch_size, 1),
            # as MLPClassifier's momentum: only used by the solver that has it
            "momentum": values["momentum"] if solver == "sgd" else 0.0,
            "weight_decay": values["weight_decay"] if solver == "adamw" else 0.0,
        }
        if seed is not None:  # a new network
            dtype = self.dtype or dtype_name(X.dtype)
            compute = ComputeSettings(backend_for(X, self.backend, self.device), dtype=dtype)
        else:  # the fitted one, as it is
            compute = ComputeSettings(self.net_.backend, dtype=dtype_name(self.net_.dtype))
            values |= {"hidden_size": self.net_.sizes[1], "init": self.net_.init,
                       "std": self.net_.std}  # fmt: skip
            seed = self.net_.seed
        return TrainSettings(
            **values, input_size=X.shape[1], output_size=num_classes, seed=seed,
            compile=self.compile, compute=compute,
        )  # fmt: skip

    @staticmethod
    def _new_network(settings: TrainSettings) -> TwoLayerNet:
        """A new network for ``settings``, initialised from their seed."""
        compute = settings.compute
        return TwoLayerNet(
            *settings.sizes, std=settings.std, backend=compute.resolved, dtype=compute.dtype,
            seed=settings.seed, init=settings.init,
        )  # fmt: skip

    def _train(
        self, net: TwoLayerNet, classes: np.ndarray, X: Array, y: Array, settings: TrainSettings,
        *, continued: bool, stop_early: bool,
    ) -> RunAttributes:  # fmt: skip
        """Train from ``net``'s parameters on ``X`` and ``y``; return the fitted attributes
        of the run: the trained network and the curves (``continued``: this estimator's,
        extended). ``stop_early``: stop by :class:`~xpnet.sklearn._stopping.Stopper`'s rule,
        on a validation set split by the settings' seed with ``early_stopping``. Changes
        nothing: ``net`` and this estimator stay as they are."""
        labels = class_indices(classes, y, net.backend)
        X = net.backend.asarray(X) if is_numpy_array(X) else X  # NumPy input: to the backend
        X_val = y_val = None
        if self.early_stopping and stop_early:
            assert settings.seed is not None  # a new network's settings are seeded
            X, X_val, labels, y_val = validation_split(X, labels, self.validation_fraction,
                                                       settings.seed, net.backend)  # fmt: skip
            batch_size = min(settings.batch_size, X.shape[0])
            per_epoch = max(X.shape[0] // batch_size, 1)
            settings = settings.replace(num_iters=self.max_iter * per_epoch, batch_size=batch_size)
        loss_curve: list[float] = list(self.loss_curve_) if continued else []
        scores: list[float] | None = [] if self.early_stopping else None
        if continued:
            scores = None if self.validation_scores_ is None else list(self.validation_scores_)
        stopper = Stopper(self.tol, self.n_iter_no_change)

        def on_epoch(epoch: int, mean_loss: float, val_acc: float | None) -> bool:
            loss_curve.append(mean_loss)
            if self.verbose:
                print(f"epoch {len(loss_curve)}: loss {mean_loss:.6f}")
            if val_acc is not None and scores is not None:
                scores.append(val_acc)
            return stop_early and stopper.stop(mean_loss, val_acc)

        rng = copy.deepcopy(net.rng)  # the run draws its seed from a copy: net's stays as it is
        result = training.fit(net.params, settings, X, labels, X_val, y_val, rng=rng,
                              on_epoch=on_epoch, on_chunk=stopper.watch)  # fmt: skip
        if stop_early and not stopper.stopped:  # all max_iter epochs, as MLPClassifier warns
            warn_not_converged(self.max_iter, self.tol, self.n_iter_no_change)
        best_score = self.best_validation_score_ if continued else None
        params = result.params
        if stopper.best_params is not None:  # early_stopping: the best epoch's parameters
            params, best_score = stopper.best_params, stopper.best_score
        return {
            "net_": _network(net, params, result.record, rng),
            "loss_curve_": loss_curve,
            "n_iter_": len(loss_curve),
            "validation_scores_": scores,
            "best_validation_score_": best_score,
        }

    # Predicting

    def predict_proba(self, X: ArrayLike) -> Array:
        """Class probabilities, shape (N, C), in X's namespace and device."""
        X = self._checked_input(X, "predict_proba")
        return self.net_.predict_proba(X)

    def predict_log_proba(self, X: ArrayLike) -> Array:
        """The logarithm of :meth:`predict_proba`."""
        X = self._checked_input(X, "predict_log_proba")
        probabilities = self.net_.predict_proba(X)
        return array_namespace(probabilities).log(probabilities)

    def predict(self, X: ArrayLike) -> Array:
        """The most probable class of each row, shape (N,), from ``classes_``.

        In X's namespace and device where the classes are numbers; a NumPy array for
        classes such as strings, which other libraries cannot hold.
        """
        X = self._checked_input(X, "predict")
        return class_labels(self.classes_, self.net_.predict(X))

    def _checked_input(self, X: ArrayLike, method: str) -> Array:
        check_is_fitted(self)
        check_same_place(X, self.net_.backend, self._host_input,
                         f"{type(self).__name__}.{method}")  # fmt: skip
        xp = namespace(X)
        refuse_complex(X)
        return validate_data(self, X, reset=False, dtype=[xp.float64, xp.float32])

    @property
    def coefs_(self) -> list[Array]:
        """``[W1 (D, H), W2 (H, C)]``."""
        check_is_fitted(self)
        return [self.net_.params["W1"], self.net_.params["W2"]]

    @property
    def intercepts_(self) -> list[Array]:
        """``[b1 (H,), b2 (C,)]``."""
        check_is_fitted(self)
        return [self.net_.params["b1"], self.net_.params["b2"]]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")


def _network(
    start: TwoLayerNet, params: Params, record: JSONObject, rng: np.random.Generator | None
) -> TwoLayerNet:
    """The trained network: a copy of ``start`` (the network a run started from, left as
    it is) that holds the run's ``params``, its ``record`` as ``last_training``, and
    ``rng``, the generator the run drew its seed from, for the next run to go on from."""
    trained = copy.copy(start)
    trained.params, trained.last_training, trained.rng = params, record, rng
    return trained


TwoLayerClassifier.__doc__ = _parameters.docstring(TwoLayerClassifier.__doc__ or "")
TwoLayerClassifier.__init__.__signature__ = _parameters.signature(  # type: ignore[attr-defined]
    TwoLayerClassifier.__init__
)
