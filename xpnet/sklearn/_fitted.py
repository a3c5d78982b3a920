"""The estimator's fitted attributes, by what sets them: X's columns, a run, a new fit.

:class:`~xpnet.sklearn.TwoLayerClassifier` sets them all at once, from one of these
dicts, when a fit has succeeded.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from xpnet.neural_net import TwoLayerNet

__all__ = ["FEATURES", "Features", "FitAttributes", "RunAttributes"]

#: The fitted attributes that scikit-learn's validation sets from X's columns.
FEATURES = ("n_features_in_", "feature_names_in_")


class Features(TypedDict, total=False):
    """The fitted attributes of X's columns (:data:`FEATURES`), as scikit-learn's
    validation sets them: ``feature_names_in_`` only for X with feature names."""

    n_features_in_: int
    feature_names_in_: np.ndarray


class RunAttributes(TypedDict):
    """The fitted attributes a run sets: the trained network and the curves."""

    net_: TwoLayerNet
    loss_curve_: list[float]
    n_iter_: int
    validation_scores_: list[float] | None
    best_validation_score_: float | None


class FitAttributes(RunAttributes, Features):
    """The fitted attributes a new fit sets: its run's, X's columns', and these two."""

    classes_: np.ndarray
    _host_input: bool
