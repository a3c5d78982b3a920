"""Several planned runs trained together on the same data (:func:`run_plans_together`).

What :func:`~xpnet.pipeline.run_plan` does for one plan, for many: each network is built
as ``make_net`` builds it, the networks train together by
:func:`xpnet.training.fit_many` (those whose settings can share one array program in one
group), and each is measured on the validation set. ``xpnet tune --together K`` runs its
trials so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xpnet.metrics import accuracy
from xpnet.pipeline._data import PreparedData
from xpnet.pipeline._plan import RunPlan
from xpnet.pipeline._run import RunResult, make_net, predict_on_threads
from xpnet.training import GroupEpochCallback, fit_many

__all__ = ["run_plans_together"]


def run_plans_together(
    plans: Sequence[RunPlan], data: PreparedData, *, on_epoch: GroupEpochCallback | None = None
) -> list[RunResult]:
    """Train the networks ``plans`` describe together on ``data``; measure each on the
    validation set.

    Parameters
    ----------
    plans : sequence of RunPlan
        Each run's plan (:func:`~xpnet.pipeline.plan_run`), all of ``data``'s preprocessing,
        each with a seed.
    data : PreparedData
    on_epoch : callable, optional
        As for :func:`xpnet.training.fit_many`: ``on_epoch(epoch, val_accs)`` after each
        epoch, returning the indices (into ``plans``) of the runs to stop there.

    Returns
    -------
    list of RunResult
        One per plan, in order, with ``net`` (its ``last_training`` the run's record:
        ``diverged_at`` not None for a run whose loss stopped being finite, and
        ``divergence`` what it would have raised alone), ``history``
        and ``val_acc`` (None for a run that diverged); the test set is not measured.
    """
    for plan in plans:
        data.check_preprocessing(plan.recipe.preprocessing)
        if plan.settings.seed is None:  # each net's weights would come before the others' rows
            raise ValueError("run_plans_together trains seeded plans only: give each a seed")
    nets = [make_net(plan.settings, data) for plan in plans]
    blank = data.preprocessing(np.zeros((1, data.X_train.shape[1]), dtype=np.float32))[0]
    trained = fit_many(
        [net.params for net in nets], [plan.settings for plan in plans], data.X_train,
        data.y_train, data.X_val, data.y_val, rngs=[net.rng for net in nets], blank=blank,
        on_epoch=on_epoch,
    )  # fmt: skip
    results = []
    for plan, net, run in zip(plans, nets, trained, strict=True):
        net.params, net.last_training = run.params, run.record
        result = RunResult(net, run.history, plan.recipe, plan.dataset, plan.settings.seed)
        if run.record["diverged_at"] is None:
            predicted = predict_on_threads(net, data.X_val, plan.settings.threads)
            result.val_acc = float(accuracy(np, data.y_val, predicted))
        results.append(result)
    return results
