"""Early stopping and the best epoch: the rule the training loop follows at each epoch end.

:class:`BestEpoch` watches the validation accuracy that the loop records at the end of
every epoch (on every runner: the compiled ones end a chunk there too), keeps a copy of
the parameters of the best epoch when asked to restore it, and says when the run has gone
``patience`` epochs without improving.
"""

from __future__ import annotations

from typing import ClassVar

from xpnet._typing import JSONObject, Namespace, Params
from xpnet.training._record import copied

__all__ = ["BestEpoch", "needs_validation"]


def needs_validation(early_stopping: bool, restore_best: bool) -> str | None:
    """The argument that needs a validation set, or None when neither is set."""
    if early_stopping:
        return "early_stopping"
    if restore_best:
        return "restore_best"
    return None


class BestEpoch:
    """Keras's ``EarlyStopping`` rule on the validation accuracy, with ``min_delta=0``.

    An epoch improves when its validation accuracy is strictly higher than the best so
    far (the first epoch always does). With ``early_stopping``, the run stops at the end
    of the ``patience``-th epoch in a row that does not improve: the best epoch ``b``
    stops it at epoch ``b + patience`` (epochs counted from 1). scikit-learn's
    ``n_iter_no_change`` counts otherwise: it needs an improvement of at least ``tol``
    and stops at the ``n_iter_no_change + 1``-th epoch in a row without one
    (``xpnet.sklearn.TwoLayerClassifier`` keeps that rule and those names).

    Parameters
    ----------
    xp : module
        The run's Array API namespace.
    early_stopping, patience, restore_best
        As :class:`~xpnet.training.TrainSettings`'s.

    Attributes
    ----------
    best_epoch : int or None
        The epoch (from 1) of the best validation accuracy so far; None before the first.
    stopped_epoch : int or None
        The epoch at whose end the rule stopped the run; None while it has not.
    best_params : dict or None
        With ``restore_best``, a copy of the best epoch's parameters.
    """

    def __init__(self, xp: Namespace, early_stopping: bool, patience: int, restore_best: bool):
        self.xp, self.early_stopping = xp, early_stopping
        self.patience, self.restore_best = patience, restore_best
        self.best_acc = -1.0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_params: Params | None = None

    #: What a checkpoint records of a run without one.
    NONE: ClassVar[JSONObject] = {"best_acc": -1.0, "best_epoch": None, "stopped_epoch": None}

    def state(self) -> JSONObject:
        """What a checkpoint records of it (the best parameters aside)."""
        return {"best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch}  # fmt: skip

    def resume(
        self, best_acc: float, best_epoch: int | None, stopped_epoch: int | None,
        best_params: Params | None,
    ) -> None:  # fmt: skip
        """Take up a checkpoint's best epoch (its parameters on the run's device)."""
        self.best_acc, self.best_epoch, self.stopped_epoch = best_acc, best_epoch, stopped_epoch
        self.best_params = best_params if self.restore_best else None

    def update(self, epoch: int, val_acc: float, params: Params) -> bool:
        """Take epoch ``epoch``'s (from 1) validation accuracy and its parameters (copied
        if it is the best); return whether the run stops here."""
        if val_acc > self.best_acc:
            self.best_acc, self.best_epoch = val_acc, epoch
            if self.restore_best:
                self.best_params = copied(self.xp, params)
            return False
        assert self.best_epoch is not None  # the first epoch always improves
        if self.early_stopping and epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def record(self, epochs: int) -> JSONObject:
        """What the record says of it, after ``epochs`` whole epochs: ``stopped_epoch``
        (None: the run went on to its end) and ``kept_epoch``, the epoch whose parameters
        the run returns (None: those after its last step, which may end mid-epoch)."""
        kept = self.best_epoch if self.restore_best and self.best_params is not None else None
        return {"stopped_epoch": self.stopped_epoch, "kept_epoch": kept, "epochs": epochs}
