"""A scikit-learn classifier: the two-layer network in pipelines and searches, on any array library.

:class:`TwoLayerClassifier` follows scikit-learn's conventions (``fit``, ``predict``,
``predict_proba``, ``score``, ``partial_fit``, ``get_params``, input validation by
scikit-learn's own helpers) and declares array API support: with
``sklearn.set_config(array_api_dispatch=True)``, it trains on the namespace and device
of ``X`` (torch on a GPU, CuPy, array-api-strict, ...), keeps its fitted parameters
there, and answers ``predict``/``predict_proba`` there too. Needs ``pip install
"xpnet[sklearn]"``::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xpnet.sklearn import TwoLayerClassifier

    model = make_pipeline(StandardScaler(), TwoLayerClassifier(hidden_size=256))
    model.fit(X_train, y_train).score(X_test, y_test)
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xpnet import training
from xpnet._deprecation import REMOVED_IN
from xpnet._typing import DTYPES, INITS, OPTIMIZERS, SCHEDULES, DType, Params, map_params
from xpnet.backend import (
    Backend,
    array_namespace,
    device_of,
    is_array_api_obj,
    is_numpy_array,
    resolve_backend,
    to_numpy,
)
from xpnet.errors import XpnetFutureWarning
from xpnet.neural_net import TwoLayerNet
from xpnet.training import MAX_DROPOUT, MAX_MOMENTUM, ComputeSettings, TrainSettings

__all__ = ["TwoLayerClassifier"]

#: The default of the deprecated ``learning_rate``: not set (scikit-learn's convention).
_UNSET = "deprecated"
_DEFAULT_LEARNING_RATE_INIT = 0.01


class TwoLayerClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The lab's two-layer network as a scikit-learn classifier.

    ``input -> affine -> ReLU -> affine -> softmax``, trained by minibatch SGD with
    momentum (or Adam, AdamW) on the softmax cross-entropy with L2 regularisation
    (optionally with dropout on the hidden layer), for up to
    ``max_iter`` epochs, stopping earlier when the training loss (or, with
    ``early_stopping``, the validation accuracy) has not improved by ``tol`` for
    ``n_iter_no_change`` epochs, as :class:`sklearn.neural_network.MLPClassifier` does.

    Parameters
    ----------
    hidden_size : int, default 100
        Hidden units.
    learning_rate_init : float, default 0.01
        The learning rate the schedule starts from, as in ``MLPClassifier``
        (``TwoLayerNet.train``'s ``learning_rate``).
    learning_rate_decay : float, default 1.0
        Factor applied to the learning rate after every epoch (``schedule="step"``).
    schedule : {"step", "cosine"}, default "step"
        How the learning rate changes: ``"step"`` multiplies it by
        ``learning_rate_decay`` after every epoch, ``"cosine"`` anneals it to zero over
        the run (``max_iter`` epochs; one per ``partial_fit`` call). ``MLPClassifier``
        calls its schedule ``learning_rate``, with other choices: its ``"constant"`` is
        ``schedule="step"`` with ``learning_rate_decay=1.0`` (the defaults);
        ``"invscaling"`` and ``"adaptive"`` have no counterpart here.
    reg : float, default 1e-4
        L2 regularisation strength: ``0.5 * reg * (sum(W1**2) + sum(W2**2))`` is added
        to the mean loss of a batch. ``MLPClassifier``'s ``alpha`` is divided by the
        batch size, so ``alpha = reg * batch_size`` is the same penalty.
    batch_size : int, default 200
        Rows per step (at most the number of samples).
    momentum : float, default 0.9
        Only used when ``solver="sgd"``, as in ``MLPClassifier``.
    solver : {"sgd", "adam", "adamw"}, default "sgd"
        The optimiser, named ``solver`` as in ``MLPClassifier`` (whose ``"sgd"`` and
        ``"adam"`` it shares); ``TwoLayerNet.train`` calls it ``optimizer``, the role
        of PyTorch's ``torch.optim`` classes, with the same choices. With ``"adamw"``,
        ``reg`` is the decoupled weight decay. Each ``fit``, and each ``partial_fit``
        call, starts the optimiser's state afresh.
    dropout : float, default 0.0
        The rate of inverted dropout on the hidden layer while training.
    max_iter : int, default 200
        The most epochs to train.
    tol : float, default 1e-4
    n_iter_no_change : int, default 10
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified) and stop
        when its accuracy stops improving; the parameters of the best epoch are kept.
    validation_fraction : float, default 0.1
    init : {"he", "gaussian"}, default "he"
        He initialisation, or the lab's ``std * randn``.
    std : float, default 1e-4
        For ``init="gaussian"``.
    shuffle : bool, default True
        Visit a fresh permutation of the rows each epoch (else sample with replacement).
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
    learning_rate : float, optional
        Deprecated: the old name of ``learning_rate_init``. Set, ``fit`` and
        ``partial_fit`` use it with an :class:`~xpnet.errors.XpnetFutureWarning` (a
        ``FutureWarning``, as scikit-learn warns of its own renamed parameters); it
        stops working in xpnet 0.2.

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
    """

    #: What each parameter may be, checked (by scikit-learn's own validation) before
    #: ``fit`` or ``partial_fit`` touches anything; :class:`xpnet.training.TrainSettings`
    #: then checks the combinations and the memory.
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_decay": [Interval(Real, 0, 1, closed="right")],
        "schedule": [StrOptions(set(SCHEDULES))],
        "reg": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "momentum": [Interval(Real, 0, MAX_MOMENTUM, closed="both")],
        "solver": [StrOptions(set(OPTIMIZERS))],
        "dropout": [Interval(Real, 0, MAX_DROPOUT, closed="both")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "init": [StrOptions(set(INITS))],
        "std": [Interval(Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "dtype": [StrOptions(set(DTYPES)), None],
        "random_state": ["random_state"],
        "backend": "no_validation",  # resolved (and checked) by ComputeSettings
        "device": "no_validation",
        "compile": [StrOptions({"auto"}), "boolean"],
        "verbose": ["verbose"],
        "learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            Hidden(StrOptions({_UNSET})),
        ],
    }

    def __init__(
        self,
        hidden_size: int = 100,
        *,
        learning_rate_init: float = _DEFAULT_LEARNING_RATE_INIT,
        learning_rate_decay: float = 1.0,
        schedule: Literal["step", "cosine"] = "step",
        reg: float = 1e-4,
        batch_size: int = 200,
        momentum: float = 0.9,
        solver: Literal["sgd", "adam", "adamw"] = "sgd",
        dropout: float = 0.0,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        init: Literal["he", "gaussian"] = "he",
        std: float = 1e-4,
        shuffle: bool = True,
        dtype: Literal["float32", "float64"] | None = None,
        random_state: Any = None,
        backend: str = "numpy",
        device: Any = None,
        compile: Literal["auto"] | bool = "auto",
        verbose: bool = False,
        learning_rate: float | Literal["deprecated"] = "deprecated",
    ) -> None:
        self.hidden_size = hidden_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate_decay = learning_rate_decay
        self.schedule = schedule
        self.reg = reg
        self.batch_size = batch_size
        self.momentum = momentum
        self.solver = solver
        self.dropout = dropout
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.init = init
        self.std = std
        self.shuffle = shuffle
        self.dtype = dtype
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.compile = compile
        self.verbose = verbose
        self.learning_rate = learning_rate

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # Fitting

    def fit(self, X: Any, y: Any) -> TwoLayerClassifier:
        """Train a new network on ``X`` (N, D) and labels ``y`` (N,); returns self.

        Every setting is checked first; a fit that fails leaves a fitted estimator as
        it was.
        """
        self._validate_params()
        with self._unchanged_on_failure():
            X, y = self._validate(X, y, reset=True)
            classes = _classes(y)
            seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
            settings = self._settings(X, len(classes), self.max_iter, seed=seed)
            self.classes_ = classes
            self._start(X, settings)
            return self._train(X, y, settings, stop_early=True)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> TwoLayerClassifier:
        """Train one more epoch on ``X`` and ``y``; the first call needs ``classes``.

        The network, its optimiser's state excepted, carries over between calls. A
        call that fails leaves the estimator as it was, the network included.
        """
        self._validate_params()
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        with self._unchanged_on_failure():
            X, y = self._validate(X, y, reset=first)
            if (
                not first
                and classes is not None
                and not np.array_equal(_classes(classes), self.classes_)
            ):
                raise ValueError(
                    f"classes={classes!r} is not the same as on the first call ({self.classes_!r})"
                )
            known = _classes(classes) if first else self.classes_
            seed = (
                int(check_random_state(self.random_state).randint(0, 2**31 - 1)) if first else None
            )
            settings = self._settings(X, len(known), 1, seed=seed)
            if first:
                self.classes_ = known
                self._start(X, settings)
            return self._train(X, y, settings, stop_early=False)

    @contextlib.contextmanager
    def _unchanged_on_failure(self) -> Iterator[None]:
        """Put back every fitted attribute if the block fails. The network keeps its
        parameters: training returns new ones, which it takes only when it succeeds."""
        fitted: dict[str, Any] = {k: list(v) if isinstance(v, list) else v
                                  for k, v in vars(self).items()
                                  if k.endswith("_") or k in _PRIVATE_STATE}  # fmt: skip
        try:
            yield
        except BaseException:
            for name in [k for k in vars(self) if k.endswith("_") or k in _PRIVATE_STATE]:
                delattr(self, name)
            self.__dict__.update(fitted)
            raise

    def _validate(self, X: Any, y: Any, *, reset: bool) -> tuple[Any, Any]:
        xp = _namespace(X)
        _refuse_complex(X)
        X, y = validate_data(self, X, y, reset=reset, dtype=[xp.float64, xp.float32])
        check_classification_targets(y)
        return X, y

    def _settings(
        self, X: Any, num_classes: int, epochs: int, *, seed: int | None
    ) -> TrainSettings:
        """The checked settings of ``epochs`` epochs on ``X``: for a new network seeded
        with ``seed``, on X's backend; for the fitted one when ``seed`` is None."""
        batch_size = min(self.batch_size, X.shape[0])
        per_epoch = max(X.shape[0] // batch_size, 1)
        fresh = seed is not None
        if fresh:
            dtype = self.dtype or ("float32" if "float32" in str(X.dtype) else "float64")
            compute = ComputeSettings(self._backend_for(X), dtype=dtype)
            init, std = self.init, self.std
        else:
            net_dtype: DType = "float32" if "float32" in str(self.net_.dtype) else "float64"
            compute = ComputeSettings(self.net_.backend, dtype=net_dtype)
            init, std, seed = self.net_.init, self.net_.std, self.net_.seed
        return TrainSettings(
            input_size=X.shape[1], hidden_size=self.hidden_size if fresh else self.net_.sizes[1],
            output_size=num_classes, init=init, std=std, seed=seed,
            learning_rate=self._learning_rate_init(),
            learning_rate_decay=self.learning_rate_decay, schedule=self.schedule,
            # the estimator's reg: AdamW's decoupled weight decay, as documented
            reg=0.0 if self.solver == "adamw" else self.reg,
            weight_decay=self.reg if self.solver == "adamw" else 0.0,
            num_iters=epochs * per_epoch, batch_size=batch_size,
            momentum=self.momentum if self.solver == "sgd" else 0.0, shuffle=self.shuffle,
            optimizer=self.solver, dropout=self.dropout, compile=self.compile, compute=compute,
        )  # fmt: skip

    def _validate_params(self) -> None:
        """scikit-learn's check of every parameter, which says, for a ``learning_rate``
        that is a schedule's name (``MLPClassifier``'s meaning), where the schedule is."""
        try:
            super()._validate_params()
        except InvalidParameterError as err:
            if isinstance(self.learning_rate, str) and self.learning_rate != _UNSET:
                raise InvalidParameterError(
                    f"{err} MLPClassifier's learning_rate (its schedule) is schedule= here: "
                    f"{' or '.join(map(repr, SCHEDULES))}; its 'constant' is schedule='step' "
                    "with learning_rate_decay=1.0 (the defaults). The initial rate is "
                    "learning_rate_init, as in MLPClassifier."
                ) from None
            raise

    def _learning_rate_init(self) -> float:
        """``learning_rate_init``, or the deprecated ``learning_rate`` where it is set."""
        if self.learning_rate == _UNSET:
            return float(self.learning_rate_init)
        if self.learning_rate_init != _DEFAULT_LEARNING_RATE_INIT:
            raise ValueError(
                f"learning_rate={self.learning_rate!r} and learning_rate_init="
                f"{self.learning_rate_init!r} are both set; learning_rate is the old name of "
                "learning_rate_init: set learning_rate_init only"
            )
        warnings.warn(
            "learning_rate was renamed learning_rate_init (as in MLPClassifier) and stops "
            f"working in xpnet {REMOVED_IN}: use learning_rate_init={self.learning_rate!r}",
            XpnetFutureWarning,
            stacklevel=4,
        )
        return float(self.learning_rate)

    def _start(self, X: Any, settings: TrainSettings) -> None:
        """A new network for ``settings``, on X's backend and device."""
        assert settings.seed is not None  # a new network's settings are seeded
        self._seed = settings.seed
        self._host_input = _is_host(X)  # predict then takes host input too
        compute = settings.compute
        self.net_ = TwoLayerNet(
            *settings.sizes, std=settings.std, backend=compute.resolved, dtype=compute.dtype,
            seed=self._seed, init=settings.init,
        )  # fmt: skip
        self.loss_curve_: list[float] = []
        self.n_iter_ = 0
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_: float | None = None

    def _backend_for(self, X: Any) -> Any:
        if is_numpy_array(X):
            return resolve_backend(self.backend, self.device)
        return resolve_backend(array_namespace(X), device_of(X))

    def _train(
        self, X: Any, y: Any, settings: TrainSettings, *, stop_early: bool
    ) -> TwoLayerClassifier:
        net = self.net_
        labels = self._encode(y, net.backend)
        X = net.backend.asarray(X) if is_numpy_array(X) else X  # NumPy input: to the backend
        X_val = y_val = None
        if self.early_stopping and stop_early:
            X, X_val, labels, y_val = self._split(X, labels)
            batch_size = min(self.batch_size, X.shape[0])
            per_epoch = max(X.shape[0] // batch_size, 1)
            settings = settings.replace(num_iters=self.max_iter * per_epoch, batch_size=batch_size)
        stopper = _Stopper(self.tol, self.n_iter_no_change)

        def on_epoch(epoch: int, mean_loss: float, val_acc: float | None) -> bool:
            self.loss_curve_.append(mean_loss)
            self.n_iter_ += 1
            if self.verbose:
                print(f"epoch {self.n_iter_}: loss {mean_loss:.6f}")
            if val_acc is not None and self.validation_scores_ is not None:
                self.validation_scores_.append(val_acc)
            return stop_early and stopper.stop(mean_loss, val_acc)

        trained = training.fit(net.params, settings, X, labels, X_val, y_val, rng=net.rng,
                               on_epoch=on_epoch, on_chunk=stopper.watch)  # fmt: skip
        net.params, net.last_training = trained.params, trained.record
        if stopper.best_params is not None:  # early_stopping: the best epoch's parameters
            net.params = stopper.best_params
            self.best_validation_score_ = stopper.best_score
        return self

    def _split(self, X: Any, labels: Any) -> tuple[Any, Any, Any, Any]:
        """A stratified validation split, made on the host, taken on the device."""
        xp = self.net_.xp
        indices = np.arange(X.shape[0])
        host_labels = to_numpy(labels)
        stratify = host_labels if np.bincount(host_labels).min(initial=2) >= 2 else None
        train, val = train_test_split(
            indices, test_size=self.validation_fraction, stratify=stratify,
            random_state=self._seed,
        )  # fmt: skip
        take = [self.net_.backend.asarray(rows) for rows in (train, val)]
        return (xp.take(X, take[0], axis=0), xp.take(X, take[1], axis=0),
                xp.take(labels, take[0], axis=0), xp.take(labels, take[1], axis=0))  # fmt: skip

    def _encode(self, y: Any, backend: Backend) -> Any:
        """Labels as class indices 0..C-1, on the network's device."""
        host = to_numpy(y)
        indices = np.searchsorted(self.classes_, host)
        known = (indices < len(self.classes_)) & (
            self.classes_[np.minimum(indices, len(self.classes_) - 1)] == host
        )
        if not np.all(known):
            raise ValueError(
                f"y has labels {np.unique(host[~known])[:5]!r} not among classes_ {self.classes_!r}"
            )
        return backend.asarray(indices)

    # Predicting

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape (N, C), in X's namespace and device."""
        X = self._checked_input(X, "predict_proba")
        return self.net_.predict_proba(X)

    def predict_log_proba(self, X: Any) -> Any:
        """The logarithm of :meth:`predict_proba`."""
        X = self._checked_input(X, "predict_log_proba")
        probabilities = self.net_.predict_proba(X)
        return array_namespace(probabilities).log(probabilities)

    def predict(self, X: Any) -> Any:
        """The most probable class of each row, shape (N,), from ``classes_``.

        In X's namespace and device where the classes are numbers; a NumPy array for
        classes such as strings, which other libraries cannot hold.
        """
        X = self._checked_input(X, "predict")
        indices = self.net_.predict(X)
        if is_numpy_array(indices) or self.classes_.dtype.kind not in "biuf":
            return self.classes_[to_numpy(indices)]
        xp = array_namespace(indices)
        classes = xp.asarray(self.classes_, device=device_of(indices))
        return xp.take(classes, indices, axis=0)

    def _checked_input(self, X: Any, method: str) -> Any:
        check_is_fitted(self)
        backend = self.net_.backend
        if _dispatching():
            same = (
                _is_host(X)
                if self._host_input
                else not _is_host(X) and backend.owns(X) and backend.holds(X)
            )
            if not same:
                fitted = "host (NumPy) arrays" if self._host_input else str(backend)
                raise ValueError(
                    f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                    f"namespace and the same device as those passed to fit() ({fitted}); got "
                    f"{type(X).__module__}.{type(X).__name__}. Move X there, or refit."
                )
        xp = _namespace(X)
        _refuse_complex(X)
        return validate_data(self, X, reset=False, dtype=[xp.float64, xp.float32])

    @property
    def coefs_(self) -> list[Any]:
        """``[W1 (D, H), W2 (H, C)]``."""
        check_is_fitted(self)
        return [self.net_.params["W1"], self.net_.params["W2"]]

    @property
    def intercepts_(self) -> list[Any]:
        """``[b1 (H,), b2 (C,)]``."""
        check_is_fitted(self)
        return [self.net_.params["b1"], self.net_.params["b2"]]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")


class _Stopper:
    """MLPClassifier's rule: stop when the training loss (or, given one, the validation
    accuracy) has not improved by ``tol`` for ``patience`` epochs; keep the parameters
    of the best validation accuracy."""

    def __init__(self, tol: float, patience: int):
        self.tol, self.patience = tol, patience
        self.best_loss, self.best_score = np.inf, -np.inf
        self.best_params: Params | None = None
        self.params: Params | None = None  # the run's so far
        self.stale = 0

    def watch(self, params: Params) -> None:
        """Follow the run's parameters (after every chunk of steps)."""
        self.params = params

    def stop(self, mean_loss: float, val_acc: float | None) -> bool:
        if val_acc is None:
            improved = mean_loss < self.best_loss - self.tol
        else:
            improved = val_acc > self.best_score + self.tol
            if val_acc > self.best_score:
                assert self.params is not None  # watched before every epoch's end
                self.best_score, self.best_params = val_acc, _copy(self.params)
        self.best_loss = min(self.best_loss, mean_loss)
        self.stale = 0 if improved else self.stale + 1
        return self.stale >= self.patience


def _is_host(X: Any) -> bool:
    """Whether ``X`` is NumPy or array-like (a list, a DataFrame), not another library's."""
    return is_numpy_array(X) or not is_array_api_obj(X)


def _dispatching() -> bool:
    import sklearn

    return bool(sklearn.get_config()["array_api_dispatch"])


def _refuse_complex(X: Any) -> None:
    """Complex input is refused on every backend, as scikit-learn refuses it in NumPy:
    a conversion to float would silently drop the imaginary part."""
    if _is_host(X):
        return  # scikit-learn's own validation refuses complex NumPy input
    dtype = X.dtype
    if array_namespace(X).isdtype(dtype, "complex floating"):
        raise ValueError(f"Complex data not supported: X has dtype {dtype}; pass X.real")


def _namespace(X: Any) -> Any:
    """X's namespace under array API dispatch (NumPy's otherwise, as scikit-learn does)."""
    if _dispatching() and not _is_host(X):
        return array_namespace(X)
    return np


def _classes(y: Any) -> np.ndarray:
    return np.unique(to_numpy(np.asarray(y) if isinstance(y, list | tuple) else y))


def _copy(params: Params) -> Params:
    return map_params(lambda p: array_namespace(p).asarray(p, copy=True), params)


#: Fitted state that scikit-learn's naming (a trailing underscore) does not show.
_PRIVATE_STATE = ("_seed", "_host_input")
