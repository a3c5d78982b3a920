"""Early stopping, as ``MLPClassifier`` does it: the rule, and the validation split.

:class:`Stopper` follows a run epoch by epoch (through :func:`xpnet.training.fit`'s
``on_epoch`` and ``on_chunk``) and says when to stop; with a validation set it keeps a
copy of the parameters of the best epoch, which the estimator keeps instead of the
last. :func:`validation_split` holds out the validation set; :func:`warn_not_converged`
warns as ``MLPClassifier`` does when a fit runs all its epochs without stopping.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from xpnet._typing import Array, Params, map_params
from xpnet.backend import Backend, array_namespace, to_numpy

__all__ = ["Stopper", "validation_split", "warn_not_converged"]


class Stopper:
    """``MLPClassifier``'s rule: stop when the training loss (or, given one, the validation
    accuracy) has not improved by ``tol`` for more than ``patience`` epochs in a row;
    keep the parameters of the best validation accuracy.

    As scikit-learn counts: an epoch improves when its loss is at most the best loss so
    far less ``tol`` (its accuracy at least the best plus ``tol``); the run stops at the
    ``patience + 1``-th epoch in a row that does not.

    Attributes
    ----------
    stopped : bool
        Whether :meth:`stop` said to stop.
    best_params : dict or None
        A copy of the parameters of the epoch of the best validation accuracy (the
        first, on a tie); None without a validation set.
    best_score : float
        That accuracy (``-inf`` before the first epoch).
    """

    def __init__(self, tol: float, patience: int):
        self.tol, self.patience = tol, patience
        self.best_loss, self.best_score = np.inf, -np.inf
        self.best_params: Params | None = None
        self.params: Params | None = None  # the run's so far
        self.stale = 0
        self.stopped = False

    def watch(self, params: Params) -> None:
        """Follow the run's parameters (``on_chunk``: after every chunk of steps)."""
        self.params = params

    def stop(self, mean_loss: float, val_acc: float | None) -> bool:
        """Whether to stop after an epoch of mean training loss ``mean_loss`` and
        validation accuracy ``val_acc`` (None without a validation set)."""
        if val_acc is None:
            stale = mean_loss > self.best_loss - self.tol
        else:
            stale = val_acc < self.best_score + self.tol
            if val_acc > self.best_score:
                assert self.params is not None  # watched before every epoch's end
                self.best_score, self.best_params = val_acc, _copy(self.params)
        self.best_loss = min(self.best_loss, mean_loss)
        self.stale = self.stale + 1 if stale else 0
        self.stopped = self.stale > self.patience
        return self.stopped


def warn_not_converged(max_iter: int, tol: float, patience: int) -> None:
    """Warn a ``ConvergenceWarning``: the fit trained all ``max_iter`` epochs and the
    :class:`Stopper` never stopped it (``fit`` -> ``_fit_new`` -> ``_train`` -> here)."""
    warnings.warn(
        f"TwoLayerClassifier reached max_iter={max_iter} epochs and has not converged yet "
        f"(it still improved by more than tol={tol} within n_iter_no_change={patience} "
        f"epochs); raise max_iter to train longer, or tol to stop sooner.",
        ConvergenceWarning,
        stacklevel=5,
    )


def validation_split(
    X: Array, labels: Array, fraction: float, seed: int, backend: Backend
) -> tuple[Array, Array, Array, Array]:
    """Rows ``X`` (N, D) and class indices ``labels`` (N,) of ``backend``, split into
    training and validation sets, ``fraction`` of them held out, stratified when every
    class has two rows: ``(X_train, X_val, labels_train, labels_val)``. The split is
    made on the host from ``seed`` and taken on the device."""
    xp = backend.xp
    host_labels = to_numpy(labels)
    stratify = host_labels if np.bincount(host_labels).min(initial=2) >= 2 else None
    train, val = train_test_split(np.arange(X.shape[0]), test_size=fraction,
                                  stratify=stratify, random_state=seed)  # fmt: skip
    rows = [backend.asarray(indices) for indices in (train, val)]
    return (xp.take(X, rows[0], axis=0), xp.take(X, rows[1], axis=0),
            xp.take(labels, rows[0], axis=0), xp.take(labels, rows[1], axis=0))  # fmt: skip


def _copy(params: Params) -> Params:
    return map_params(lambda p: array_namespace(p).asarray(p, copy=True), params)
