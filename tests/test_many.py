"""Many networks trained together (xpnet.training.fit_many): each member is its own run.

Every backend: a member's parameters, losses and accuracies are those of the same
settings trained alone by ``fit`` (float64, to 1e-10 relative: only the order in which
the machine sums may differ), whatever the others' learning rates, seeds, hidden sizes,
dropout, momentum and L2 terms; a member that diverges stops alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.augment import AUGMENTATIONS
from xpnet.backend import Backend, to_numpy
from xpnet.errors import TrainingDivergedError
from xpnet.training import ComputeSettings, TrainResult, TrainSettings, fit, fit_many

ROWS, BATCH = 600, 50  # 12 steps an epoch


def _data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    X, X_val = rng.random((ROWS, 784)), rng.random((120, 784))
    return X, rng.integers(0, 10, ROWS), X_val, rng.integers(0, 10, 120)


def _member(
    backend: Backend, hidden: int, seed: int, **train: Any
) -> tuple[TwoLayerNet, TrainSettings]:
    net = TwoLayerNet(784, hidden, 10, std=1e-2, seed=seed, backend=backend, dtype="float64")
    arguments = {"num_iters": 300, "batch_size": BATCH, "learning_rate_decay": 0.95, **train}
    settings = TrainSettings.of_network(
        net.sizes, {"init": net.init, "std": net.std, "seed": seed,
                    "compute": ComputeSettings(backend, dtype="float64")},
        rows=ROWS, epochs=None, **{"num_iters": None, "learning_rate_decay": None, **arguments},
    )  # fmt: skip
    return net, settings


def _alone(backend: Backend, hidden: int, seed: int, data: tuple[np.ndarray, ...],
           **train: Any) -> TrainResult:  # fmt: skip
    net, settings = _member(backend, hidden, seed, **train)
    return fit(net.params, settings, *data, rng=net.rng)


def _together(backend: Backend, members: list[dict[str, Any]], data: tuple[np.ndarray, ...],
              **options: Any) -> list[TrainResult]:  # fmt: skip
    built = [_member(backend, **member) for member in members]
    return fit_many([net.params for net, _ in built], [s for _, s in built], *data,
                    rngs=[net.rng for net, _ in built], **options)  # fmt: skip


def _assert_same_run(together: TrainResult, alone: TrainResult) -> None:
    for name, expected in alone.params.items():
        got, want = to_numpy(together.params[name]), to_numpy(expected)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max(), err_msg=name)
    h, a = together.history, alone.history
    np.testing.assert_allclose(h["loss_history"], a["loss_history"], rtol=1e-10)
    assert len(h["loss_history"]) == len(a["loss_history"])
    assert h["train_acc_history"] == a["train_acc_history"]
    assert h["val_acc_history"] == a["val_acc_history"]
    assert {type(value) for value in h["val_acc_history"] + h["train_acc_history"]} <= {float}


MIXED = [
    {"hidden": 50, "seed": 1, "learning_rate": 1e-2, "reg": 1e-3, "momentum": 0.9},
    {"hidden": 100, "seed": 2, "learning_rate": 5e-3, "reg": 0.0, "momentum": 0.5, "dropout": 0.2},
    {"hidden": 175, "seed": 3, "learning_rate": 2e-2, "reg": 1e-4, "momentum": 0.8, "dropout": 0.5,
     "learning_rate_decay": 0.9},
]  # fmt: skip


def test_each_member_of_a_mixed_group_equals_its_run_alone(backend: Backend):
    data = _data()
    together = _together(backend, MIXED, data)
    for member, result in zip(MIXED, together, strict=True):
        _assert_same_run(result, _alone(backend, **member, data=data))
        assert result.record["together"] == 3
        assert result.record["diverged_at"] is None
        assert result.record["iterations"] == 300


def test_members_with_adamw_shuffle_cosine_and_distortions_equal_their_runs(backend: Backend):
    data = _data()
    shared = {
        "optimizer": "adamw",
        "shuffle": True,
        "schedule": "cosine",
        "num_iters": 36,
        "learning_rate_decay": 1.0,
        "augment": AUGMENTATIONS["affine+elastic"],
    }
    members = [
        {"hidden": 40, "seed": 11, "learning_rate": 1e-3, "weight_decay": 0.01, **shared},
        {"hidden": 64, "seed": 12, "learning_rate": 3e-3, "weight_decay": 0.0, "reg": 1e-4,
         "dropout": 0.3, **shared},
    ]  # fmt: skip
    for member, result in zip(members, _together(backend, members, data), strict=True):
        _assert_same_run(result, _alone(backend, **member, data=data))


def test_a_diverging_member_stops_alone(backend: Backend):
    data = _data()
    members = [MIXED[0], {**MIXED[2], "learning_rate": 1e6}, MIXED[1]]
    together = _together(backend, members, data)
    with pytest.raises(TrainingDivergedError) as diverged:
        _alone(backend, **members[1], data=data)
    record = together[1].record
    assert record["diverged_at"] == diverged.value.iteration < 300
    assert record["divergence"] == str(diverged.value)  # the message a run alone raises
    assert record["iterations"] == diverged.value.iteration
    for name, expected in diverged.value.params.items():  # the last finite check's
        want = to_numpy(expected)
        np.testing.assert_allclose(to_numpy(together[1].params[name]), want, rtol=0,
                                   atol=1e-10 * np.abs(want).max())  # fmt: skip
    assert together[1].history["loss_history"] == pytest.approx(
        diverged.value.history["loss_history"]
    )
    for k in (0, 2):  # the others go on to the end, as alone
        assert together[k].record["diverged_at"] is None
        _assert_same_run(together[k], _alone(backend, **members[k], data=data))


def test_on_epoch_stops_the_members_it_names():
    data = _data()
    seen: list[tuple[int, list[float | None]]] = []

    def on_epoch(epoch: int, val_accs: list[float | None]) -> list[int]:
        seen.append((epoch, val_accs))
        return [0] if epoch == 2 else []

    together = _together("numpy", MIXED[:2], data, on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == list(range(1, 26))
    assert all(accs[0] is None for epoch, accs in seen if epoch > 2)  # stopped: no more
    assert together[0].record["stopped_epoch"] == 2
    # what a run of two epochs alone gives (the step schedule does not look ahead)
    _assert_same_run(together[0], _alone("numpy", **MIXED[0], num_iters=24, data=data))
    _assert_same_run(together[1], _alone("numpy", **MIXED[1], data=data))


def test_settings_that_cannot_share_a_program_are_grouped_in_order():
    data = _data()
    members = [MIXED[0], {**MIXED[1], "batch_size": 20}, {**MIXED[2], "num_iters": 100}]
    told: list[tuple[int, ...]] = []

    def on_epoch(epoch: int, val_accs: list[float | None]) -> list[int]:
        told.append(tuple(k for k, value in enumerate(val_accs) if value is not None))
        assert len(val_accs) == 3  # every network's place, whichever group is training
        return [1] if 0 not in told[-1] else []  # stop network 1 (the second group's) at once

    together = _together("numpy", members, data, on_epoch=on_epoch)
    assert told[:3] == [(0, 2)] * 3  # the first group first; the second stopped after one
    assert told[-1] == (1,)
    assert together[1].record["stopped_epoch"] == 1
    assert [r.record["together"] for r in together] == [2, 1, 2]
    assert [r.record["index"] for r in together] == [0, 1, 2]
    _assert_same_run(together[1], _alone("numpy", **members[1], num_iters=30, data=data))


def test_bad_calls_are_refused_before_training():
    data = _data()
    net, settings = _member("numpy", 20, 1)
    with pytest.raises(ValueError, match="as many params, settings and rngs"):
        fit_many([net.params], [settings, settings], *data, rngs=[net.rng])
    _, stopping = _member("numpy", 20, 1, early_stopping=True)
    with pytest.raises(ValueError, match="early stopping"):
        fit_many([net.params], [stopping], *data, rngs=[net.rng])
    _, other = _member("numpy", 30, 1)
    with pytest.raises(ValueError, match=r"params\[0\] are those of a 784-20-10"):
        fit_many([net.params], [other], *data, rngs=[net.rng])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"on_epoch": 3}, "on_epoch must be a callable"),
        ({"rngs": [np.random.default_rng(0), 7]}, "rngs\\[1\\] must be a numpy.random.Generator"),
    ],
)
def test_a_callback_or_generator_of_the_wrong_type_is_refused(change, message):
    nets_settings = [_member("numpy", 20, seed) for seed in (1, 2)]
    arguments = {"rngs": [net.rng for net, _ in nets_settings], **change}
    with pytest.raises(TypeError, match=message):
        fit_many([net.params for net, _ in nets_settings], [s for _, s in nets_settings],
                 *_data(), **arguments)  # fmt: skip


def test_a_group_too_large_for_memory_is_refused_up_front():
    net, settings = _member("numpy", 20_000, 1)
    count = 40_000  # networks of 20,000 hidden units: some 30 TB with their gradients
    with pytest.raises(ValueError, match="40000 networks of hidden_size=20000 trained together"):
        fit_many([net.params] * count, [settings] * count, *_data(), rngs=[None] * count)


def test_members_of_other_lengths_stop_at_their_own_end(backend: Backend):
    data = _data()
    members = [{**MIXED[0], "num_iters": 155}, MIXED[1], {**MIXED[2], "num_iters": 24}]
    told: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def on_epoch(epoch: int, val_accs: list[float | None]) -> None:
        for k, value in enumerate(val_accs):
            if value is not None:
                told[k].append(epoch)

    together = _together(backend, members, data, on_epoch=on_epoch)
    assert [r.record["iterations"] for r in together] == [155, 300, 24]
    # each is told of each epoch it ends, its last included (24 = 2 epochs of 12)
    assert told == {0: list(range(1, 13)), 1: list(range(1, 26)), 2: [1, 2]}
    assert [r.record["together"] for r in together] == [3, 3, 3]
    for member, result in zip(members, together, strict=True):
        _assert_same_run(result, _alone(backend, **member, data=data))


def test_members_that_stopped_leave_the_stack(backend: Backend, monkeypatch: pytest.MonkeyPatch):
    """Once a quarter of the stack has stopped, the others train on in a stack of their own,
    cut to the largest hidden size among them: a stopped member costs nothing more."""
    from xpnet.training import _group

    computed: list[tuple[tuple[int, ...], int]] = []  # each chunk: W1's shape, its steps

    class Recorded:
        def __init__(self, runner: Any) -> None:
            self.runner = runner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.runner, name)

        def __call__(self, state: Any, data: Any, inputs: Any, rates: Any) -> Any:
            computed.append((tuple(state["params"]["W1"].shape), int(inputs["batch"].shape[0])))
            return self.runner(state, data, inputs, rates)

    select = _group.select_runner
    monkeypatch.setattr(_group, "select_runner", lambda *args: Recorded(select(*args)))
    data = _data()
    members = [{**MIXED[0], "num_iters": 155}, MIXED[1], {**MIXED[2], "num_iters": 24}]
    together = _together(backend, members, data)
    steps: dict[tuple[int, ...], int] = {}
    for shape, count in computed:
        steps[shape] = steps.get(shape, 0) + count
    # 175 units for 24 steps; then 50 and 100 units, at 100, to 155; then the 100 alone
    assert steps == {(3, 784, 175): 24, (2, 784, 100): 131, (1, 784, 100): 145}
    assert [r.record["iterations"] for r in together] == [155, 300, 24]
    _assert_same_run(together[1], _alone(backend, **members[1], data=data))


def test_members_without_a_seed_draw_the_lab_batches_in_order():
    data = _data()
    nets = [TwoLayerNet(784, h, 10, std=1e-2, backend="numpy", dtype="float64") for h in (30, 40)]
    lengths = (60, 36)
    settings = [
        TrainSettings.of_network(
            net.sizes,
            {"init": net.init, "std": net.std, "seed": None, "compute": ComputeSettings("numpy")},
            rows=ROWS,
            epochs=None,
            num_iters=n,
            learning_rate_decay=None,
            learning_rate=1e-2,
            batch_size=BATCH,
        )
        for net, n in zip(nets, lengths, strict=True)
    ]
    np.random.seed(5)
    together = fit_many([n.params for n in nets], settings, *data, rngs=[None, None])
    np.random.seed(5)  # the same runs one after another, from the same global state
    for net, s, result in zip(nets, settings, together, strict=True):
        _assert_same_run(result, fit(net.params, s, *data, rng=None))


# 150 steps an epoch: a compiled runner's chunks of 100 steps end at 100, 150, 250, 300,
# ..., and fit checks for divergence at 100, 250, 400, ... (100 steps or more since the
# last check); an eager one's chunks are single steps, and fit checks at 100, 200, 300, ...
QUICK = {"batch_size": 4, "num_iters": 600, "momentum": 0.9, "learning_rate_decay": 1.0}


def test_members_are_checked_for_divergence_where_their_runs_alone_are(backend: Backend):
    _assert_checked_where_alone(backend)


def test_a_group_run_by_another_runner_than_alone_is_checked_where_its_members_alone_are(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
):
    """A group on torch's CUDA runs eagerly while each member alone runs CUDA graphs of 100
    steps: its checks still fall at the ends of those. Shown here with any backend's
    compiled runner alone and the group forced eager."""
    from xpnet.training import _group
    from xpnet.training._runners import EagerRunner, compiled_runner_kind

    if compiled_runner_kind(backend) is None:
        pytest.skip(f"{backend.name} has no compiled runner: alone and together run eagerly")
    monkeypatch.setattr(_group, "select_runner", lambda b, step, compile: EagerRunner(b, step))
    _assert_checked_where_alone(backend)


def _assert_checked_where_alone(backend: Backend) -> None:
    data = _data()
    diverging = {"hidden": 20, "seed": 1, "learning_rate": 3.831e4, **QUICK}
    members = [diverging, {"hidden": 30, "seed": 2, "learning_rate": 1e-2, **QUICK,
                           "num_iters": 175}]  # fmt: skip
    with pytest.raises(TrainingDivergedError) as alone:
        _alone(backend, **diverging, data=data)
    assert 200 < alone.value.iteration < 250  # compiled: between the checks at 100 and 250
    together = _together(backend, members, data)
    assert together[0].record["diverged_at"] == alone.value.iteration
    assert together[0].record["divergence"] == str(alone.value)
    for name, expected in alone.value.params.items():  # the last check's (100 or 200)
        want = to_numpy(expected)
        np.testing.assert_allclose(to_numpy(together[0].params[name]), want, rtol=0,
                                   atol=1e-10 * np.abs(want).max())  # fmt: skip
    assert together[0].history["val_acc_history"] == alone.value.history["val_acc_history"]
    _assert_same_run(together[1], _alone(backend, **members[1], data=data))


def test_a_member_stopped_by_on_epoch_is_checked_as_its_run_alone_is():
    data = _data()
    diverging = {"hidden": 20, "seed": 1, "learning_rate": 8.254e4, **QUICK}

    def stop_first_at_epoch_1(epoch: int, val_accs: list[float | None]) -> list[int]:
        return [0] if epoch == 1 else []

    net, settings = _member("numpy", 20, 1, **{k: v for k, v in diverging.items()
                                              if k not in ("hidden", "seed")})  # fmt: skip
    with pytest.raises(TrainingDivergedError) as alone:
        fit(net.params, settings, *data, rng=net.rng,
            on_epoch=lambda epoch, loss, val: epoch == 1)  # fmt: skip
    assert 100 < alone.value.iteration < 150  # after the check at 100, before the epoch's end
    other = {"hidden": 30, "seed": 2, "learning_rate": 1e-2, **QUICK}
    together = _together("numpy", [diverging, other], data, on_epoch=stop_first_at_epoch_1)
    assert together[0].record["together"] == 2
    assert together[0].record["diverged_at"] == alone.value.iteration
    assert together[0].record["divergence"] == str(alone.value)
    assert together[0].record["stopped_epoch"] is None
    _assert_same_run(together[1], _alone("numpy", **other, data=data))
