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
import inspect
import math
import textwrap
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xpnet import training
from xpnet._typing import DTYPES, DType, Params, map_params
from xpnet.backend import (
    Backend,
    array_namespace,
    device_of,
    is_array_api_obj,
    is_numpy_array,
    resolve_backend,
    to_numpy,
)
from xpnet.hyperparameters import Hyperparameters, Row, rows
from xpnet.neural_net import TwoLayerNet
from xpnet.training import ComputeSettings, TrainSettings

__all__ = ["TwoLayerClassifier"]

#: The estimator's defaults of the hyperparameters, values only (as a recipe's):
#: ``MLPClassifier``'s where it has the hyperparameter, the table's elsewhere.
DEFAULTS = Hyperparameters(
    hidden_size=100, learning_rate=0.01, learning_rate_decay=1.0, reg=1e-4, momentum=0.9,
    init="he", shuffle=True,
)  # fmt: skip

#: What the estimator adds to the table's line of a hyperparameter, by the table's name.
_NOTES = {
    "learning_rate": "Named as in ``MLPClassifier`` (``TwoLayerNet.train``'s ``learning_rate``).",
    "schedule": "``MLPClassifier`` calls its schedule ``learning_rate``, with other choices: "
    'its ``"constant"`` is ``schedule="step"`` with ``learning_rate_decay=1.0`` (the '
    'defaults); ``"invscaling"`` and ``"adaptive"`` have no counterpart here. The '
    "cosine schedule's run is ``max_iter`` epochs (one per ``partial_fit`` call).",
    "reg": "``MLPClassifier``'s ``alpha`` is divided by the batch size: ``alpha = reg * "
    "batch_size`` is the same penalty.",
    "weight_decay": 'Only used when ``solver="adamw"``.',
    "batch_size": "At most the number of samples.",
    "optimizer": 'Named ``solver`` as in ``MLPClassifier`` (whose ``"sgd"`` and '
    '``"adam"`` it shares; ``TwoLayerNet.train`` calls it ``optimizer``). Each ``fit``, '
    "and each ``partial_fit`` call, starts the optimiser's state afresh.",
    "momentum": 'Only used when ``solver="sgd"``, as in ``MLPClassifier``.',
}

#: ``MLPClassifier``'s parameters that the estimator spells otherwise, and where they are.
_MLP_NAMES = {
    "learning_rate": "MLPClassifier's learning_rate (its schedule) is schedule= here: 'step' "
    "or 'cosine'; its 'constant' is schedule='step' with learning_rate_decay=1.0 (the "
    "defaults). The initial rate is learning_rate_init, as in MLPClassifier.",
    "alpha": "MLPClassifier's alpha is reg * batch_size here: reg, the loss's L2 term, is "
    "not divided by the batch size.",
    "hidden_layer_sizes": "the network has one hidden layer: give hidden_size.",
}


def _rows() -> tuple[Row, ...]:
    """The table's hyperparameters that are the estimator's parameters."""
    return tuple(row for row in rows() if row.estimator is not None)


def _name(row: Row) -> str:
    """A hyperparameter's name in the estimator."""
    return row.estimator or row.name


def _constraints(row: Row) -> list[Any]:
    """A hyperparameter's range as scikit-learn's parameter validation declares it."""
    if row.choices:
        return [StrOptions(set(row.choices))]
    if row.kind is bool:
        return ["boolean"]
    if row.kind is int:
        return [Interval(Integral, 1, None, closed="left")]
    high = None if math.isinf(row.high) else row.high
    closed = ("neither" if high is None else "right") if row.low_open else (
        "left" if high is None else "both")  # fmt: skip
    return [Interval(Real, row.low, high, closed=closed)]


class TwoLayerClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The lab's two-layer network as a scikit-learn classifier.

    ``input -> affine -> ReLU -> affine -> softmax``, trained by minibatch SGD with
    momentum (or Adam, AdamW) on the softmax cross-entropy with L2 regularisation
    (optionally with dropout on the hidden layer), for up to
    ``max_iter`` epochs, stopping earlier when the training loss (or, with
    ``early_stopping``, the validation accuracy) has not improved by ``tol`` for
    ``n_iter_no_change`` epochs, as :class:`sklearn.neural_network.MLPClassifier` does.

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
    """

    #: What each parameter may be, checked (by scikit-learn's own validation) before
    #: ``fit`` or ``partial_fit`` touches anything: the hyperparameters' ranges from
    #: their table, then the estimator's own; :class:`xpnet.training.TrainSettings`
    #: then checks the combinations and the memory.
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **{_name(row): _constraints(row) for row in _rows()},
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
        random_state: Any = None,
        backend: str = "numpy",
        device: Any = None,
        compile: Literal["auto"] | bool = "auto",
        verbose: bool = False,
        **hyperparameters: Any,
    ) -> None:
        unknown = sorted(set(hyperparameters) - {_name(row) for row in _rows()})
        if unknown:
            hint = " ".join(_MLP_NAMES.get(name, "") for name in unknown)
            raise TypeError(
                f"TwoLayerClassifier got unexpected keyword arguments {unknown}; see "
                f"help(TwoLayerClassifier) for its parameters. {hint}".strip()
            )
        for row in _rows():
            name = _name(row)
            setattr(self, name, hyperparameters.get(name, getattr(DEFAULTS, row.name)))
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

    def _hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as set, by the table's names."""
        return {row.name: getattr(self, _name(row)) for row in _rows()}

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
        values = self._hyperparameters()
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
            dtype = self.dtype or ("float32" if "float32" in str(X.dtype) else "float64")
            compute = ComputeSettings(self._backend_for(X), dtype=dtype)
        else:  # the fitted one, as it is
            net_dtype: DType = "float32" if "float32" in str(self.net_.dtype) else "float64"
            compute = ComputeSettings(self.net_.backend, dtype=net_dtype)
            values |= {"hidden_size": self.net_.sizes[1], "init": self.net_.init,
                       "std": self.net_.std}  # fmt: skip
            seed = self.net_.seed
        return TrainSettings(
            **values, input_size=X.shape[1], output_size=num_classes, seed=seed,
            compile=self.compile, compute=compute,
        )  # fmt: skip

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
            batch_size = min(settings.batch_size, X.shape[0])
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


def _hyperparameters_doc() -> str:
    """The numpydoc entries of the hyperparameters, from the table and :data:`_NOTES`."""
    entries = []
    for row in _rows():
        kind = "{" + ", ".join(f'"{c}"' for c in row.choices) + "}" if row.choices else (
            row.kind.__name__)  # fmt: skip
        default = getattr(DEFAULTS, row.name)
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        note = f" {_NOTES[row.name]}" if row.name in _NOTES else ""
        text = textwrap.fill(f"{row.help[0].upper()}{row.help[1:]}.{note}", 84)
        entries.append(f"{_name(row)} : {kind}, default {shown}\n" + textwrap.indent(text, "    "))
    return "\n".join(entries)


def _signature() -> inspect.Signature:
    """``__init__``'s signature: the hyperparameters (scikit-learn reads their names and
    defaults from it), then the estimator's own keywords."""
    own = inspect.signature(TwoLayerClassifier.__init__).parameters.values()
    keyword = inspect.Parameter.KEYWORD_ONLY
    table = [inspect.Parameter(_name(row), keyword, default=getattr(DEFAULTS, row.name))
             for row in _rows()]  # fmt: skip
    listed = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return inspect.Signature([listed[0], *table, *listed[1:]])


TwoLayerClassifier.__doc__ = inspect.cleandoc(TwoLayerClassifier.__doc__ or "").replace(
    "HYPERPARAMETERS", _hyperparameters_doc()
)
TwoLayerClassifier.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
