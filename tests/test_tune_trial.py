"""A trial's side of a search on a real Dask worker, and the search's relay that answers it."""

from __future__ import annotations

import uuid

import pytest

optuna = pytest.importorskip("optuna", reason="xpnet tune needs pip install optuna distributed")
distributed = pytest.importorskip(
    "distributed", reason="xpnet tune needs pip install optuna distributed"
)

from xpnet.pipeline import plan_run, prepare_data  # noqa: E402
from xpnet.tune._relay import Relay  # noqa: E402
from xpnet.tune._trial import GO, LOST, PRUNED, TrialTask, _Reports, run_trials_together  # noqa: E402

pytestmark = pytest.mark.tune


@pytest.fixture
def client():
    """A Dask client of an in-process cluster of one worker."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as dask_client:  # fmt: skip
        yield dask_client


def test_a_pruned_trial_whose_task_runs_again_is_told_it_was_pruned(client):
    """A task of trials together runs again when its worker dies: a trial of it the search
    had pruned is told so (not run again from its start), another that it was lost."""
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.5))  # fmt: skip
    pruned, going = study.ask(), study.ask()
    channel = f"xpnet-test-{uuid.uuid4().hex}"
    with Relay(channel, client, study, heartbeat=None, interval=5.0) as relay:
        relay.add(pruned)
        relay.add(going)
        numbers = [pruned.number, going.number]
        with _Reports(channel, numbers) as reports:  # the task's first run
            assert [reports.ask(n, 0) for n in numbers] == [GO, GO]
            assert reports.ask(pruned.number, 1, 0.1) == PRUNED  # below the threshold
            assert reports.ask(going.number, 1, 0.9) == GO
        with _Reports(channel, numbers) as again:  # the same task, on another worker
            assert [again.ask(n, 0) for n in numbers] == [PRUNED, LOST]
    assert study.trials[pruned.number].intermediate_values == {1: 0.1}


@pytest.mark.mnist
def test_a_group_of_a_task_that_raises_fails_its_own_trials_only(client, mnist_dir):
    """Trials of two batch sizes train as two groups, one after another: the second raises
    (settings fit_many refuses: early stopping, which tune itself refuses up front), and
    its trial fails with the reason, while the first group's trials complete as trained."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trials = [study.ask() for _ in range(3)]
    channel = f"xpnet-test-{uuid.uuid4().hex}"
    plan = plan_run("fast", dtype="float32", seed=0)
    data = prepare_data(plan.recipe.preprocessing, data_dir=mnist_dir).first(2000)
    params = [
        {"batch_size": 64, "hidden_size": 16, "num_iters": 62},
        {"batch_size": 64, "hidden_size": 24, "num_iters": 62},
        {"batch_size": 128, "hidden_size": 16, "num_iters": 30, "early_stopping": True},
    ]
    with Relay(channel, client, study, heartbeat=None, interval=5.0) as relay:
        for trial in trials:
            relay.add(trial)
        task = TrialTask(plan, [], channel, threads=1)
        outcomes = client.submit(run_trials_together, client.scatter(data), task, params,
                                 [t.number for t in trials], pure=False).result()  # fmt: skip
    states = [outcome["state"] for outcome in outcomes]
    assert states == ["complete", "complete", "failed"], outcomes
    assert "early stopping" in outcomes[2]["error"]
    for outcome in outcomes[:2]:
        assert 0.5 < outcome["value"] <= 1.0
