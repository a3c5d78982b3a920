"""The optimisers' updates (SGD with and without momentum, Adam, AdamW), on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet.optim import SGD, Adam, make_optimizer


def step(sgd, b, params, grads, learning_rate, state=None):
    """One SGD step on backend ``b``; returns the optimiser state."""
    state = sgd.init(b.xp, params) if state is None else state
    grads = {k: b.asarray(np.array(v)) for k, v in grads.items()}
    sgd.step(b.xp, params, grads, state, learning_rate)
    return state


def test_plain_sgd_steps_against_the_gradient(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([1.0, -2.0]))}
    state = step(SGD(), b, params, {"w": [10.0, 10.0]}, 0.1)
    assert state == {}
    np.testing.assert_allclose(to_numpy(params["w"]), [0.0, -3.0])


def test_momentum_follows_v_equals_mu_v_minus_lr_g(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([1.0]))}
    sgd = SGD(momentum=0.9)
    state = step(sgd, b, params, {"w": [1.0]}, 0.1)  # v = -0.1,          w = 0.9
    state = step(sgd, b, params, {"w": [1.0]}, 0.1, state)  # v = -0.09 - 0.1,   w = 0.71
    np.testing.assert_allclose(to_numpy(state["velocity"]["w"]), [-0.19])
    np.testing.assert_allclose(to_numpy(params["w"]), [0.71])


def test_the_learning_rate_may_be_an_array_on_the_device(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([0.0]))}
    step(SGD(), b, params, {"w": [1.0]}, b.asarray(np.array(0.5)))
    np.testing.assert_allclose(to_numpy(params["w"]), [-0.5])


def test_reg_adds_the_l2_gradient_to_decayed_parameters(backend):
    b = resolve_backend(backend)
    params = {"W": b.asarray(np.array([2.0])), "b": b.asarray(np.array([2.0]))}
    sgd = SGD(reg=0.5, decayed=frozenset({"W"}))
    step(sgd, b, params, {"W": [1.0], "b": [1.0]}, 0.1)
    # W -= 0.1 * (1 + 0.5 * 2);  b -= 0.1 * 1 (not decayed)
    np.testing.assert_allclose(to_numpy(params["W"]), [1.8])
    np.testing.assert_allclose(to_numpy(params["b"]), [1.9])


def test_reg_with_momentum(backend):
    b = resolve_backend(backend)
    params = {"W": b.asarray(np.array([2.0]))}
    sgd = SGD(momentum=0.9, reg=0.5, decayed=frozenset({"W"}))
    state = step(sgd, b, params, {"W": [1.0]}, 0.1)  # v = -0.1 * (1 + 1) = -0.2, W = 1.8
    state = step(sgd, b, params, {"W": [1.0]}, 0.1, state)  # v = -0.18 - 0.1 * 1.9, W = 1.43
    np.testing.assert_allclose(to_numpy(state["velocity"]["W"]), [-0.37])
    np.testing.assert_allclose(to_numpy(params["W"]), [1.43])


def test_training_with_reg_matches_the_regularised_gradient(backend):
    """One SGD step with the L2 term in the optimizer equals one on the lab's full gradient."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    net = TwoLayerNet(5, 6, 3, std=0.5, backend=backend, seed=1)
    before = {k: to_numpy(v).copy() for k, v in net.params.items()}
    _, grads = net.loss(X, y, reg=0.3)
    net.train(X, y, X, y, learning_rate=0.1, reg=0.3, num_iters=1, batch_size=8, shuffle=True)
    for name, g in grads.items():
        np.testing.assert_allclose(to_numpy(net.params[name]), before[name] - 0.1 * g, rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "settings", "torch_weight_decay"),
    [
        ("sgd", {"momentum": 0.9, "reg": 0.1}, 0.1),
        ("adam", {}, 0.0),
        ("adam", {"reg": 0.1}, 0.1),  # torch.optim.Adam's weight_decay is the L2 term, reg
        ("adamw", {"weight_decay": 0.1}, 0.1),  # torch.optim.AdamW's is the decoupled decay
    ],
)
def test_each_optimizer_matches_torch_on_the_same_gradients(
    backend, name, settings, torch_weight_decay
):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((5, 3))
    gradients = [rng.standard_normal((5, 3)) for _ in range(25)]
    optimizer = make_optimizer(name, **settings, decayed=frozenset({"W"}))
    params = {"W": backend.asarray(start)}
    state = optimizer.init(backend.xp, params)
    reference = torch.nn.Parameter(torch.tensor(start))
    torch_class = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    extra = {"momentum": settings["momentum"]} if name == "sgd" else {}
    torch_optimizer = torch_class[name]([reference], lr=0.01, weight_decay=torch_weight_decay,
                                        **extra)  # fmt: skip
    for g in gradients:
        optimizer.step(
            backend.xp, params, {"W": backend.asarray(g.copy())}, state, 0.01
        )  # it may overwrite
        reference.grad = torch.tensor(g)
        torch_optimizer.step()
    expected = reference.detach().numpy()
    np.testing.assert_allclose(to_numpy(params["W"]), expected, rtol=1e-6)


def test_adam_follows_its_update_formulas(backend):
    adam = Adam(beta1=0.9, beta2=0.99, eps=1e-8)
    params = {"w": backend.asarray(np.array([1.0, -1.0]))}
    state = adam.init(backend.xp, params)
    g = np.array([0.5, -2.0])
    adam.step(backend.xp, params, {"w": backend.asarray(g)}, state, 0.1)
    m, v = 0.1 * g, 0.01 * g**2  # (1 - beta) * g after one step from zero
    expected = np.array([1.0, -1.0]) - 0.1 / 0.1 * m / (np.sqrt(v) / np.sqrt(0.01) + 1e-8)
    np.testing.assert_allclose(to_numpy(params["w"]), expected, rtol=1e-12)
    assert float(state["t"]) == 1.0


def test_an_unknown_optimizer_is_refused(toy_net, toy_data):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        toy_net.train(*toy_data, *toy_data, num_iters=2, optimizer="rmsprop")


def test_momentum_with_adam_is_refused_not_ignored(toy_net, toy_data):
    before = {k: to_numpy(v).copy() for k, v in toy_net.params.items()}
    with pytest.raises(ValueError, match=r"momentum=0\.9 is SGD's"):
        toy_net.train(*toy_data, *toy_data, num_iters=2, optimizer="adam", momentum=0.9)
    for name, value in toy_net.params.items():
        np.testing.assert_array_equal(to_numpy(value), before[name])


# reg, the loss's L2 term with every optimiser, and AdamW's own weight_decay.


def test_adamw_with_an_l2_term_is_torch_adamw_on_the_regularised_gradient(backend):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    start = rng.standard_normal((5, 3))
    gradients = [rng.standard_normal((5, 3)) for _ in range(25)]
    optimizer = make_optimizer("adamw", momentum=0.0, weight_decay=0.1, reg=0.3,
                               decayed=frozenset({"W"}))  # fmt: skip
    params = {"W": backend.asarray(start)}
    state = optimizer.init(backend.xp, params)
    reference = torch.nn.Parameter(torch.tensor(start))
    torch_optimizer = torch.optim.AdamW([reference], lr=0.01, weight_decay=0.1)
    for g in gradients:
        optimizer.step(backend.xp, params, {"W": backend.asarray(g.copy())}, state, 0.01)
        reference.grad = torch.tensor(g) + 0.3 * reference.detach()  # the L2 term's gradient
        torch_optimizer.step()
    np.testing.assert_allclose(to_numpy(params["W"]), reference.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_reg_is_the_loss_l2_term_with_every_optimizer(backend, optimizer):
    """One step with reg: the recorded loss is the lab's regularised loss, and the update
    is the optimiser's on the lab's regularised gradient, AdamW's included."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    net = TwoLayerNet(5, 6, 3, std=0.5, backend=backend, seed=1)
    params = {k: backend.asarray(to_numpy(v).copy()) for k, v in net.params.items()}
    loss, grads = net.loss(X, y, reg=0.3)
    stats = net.train(X, y, X, y, learning_rate=0.1, reg=0.3, weight_decay=0.0, num_iters=1,
                      batch_size=8, shuffle=True, optimizer=optimizer)  # fmt: skip
    np.testing.assert_allclose(stats["loss_history"][0], float(loss), rtol=1e-12)
    plain = make_optimizer(optimizer, momentum=0.0, weight_decay=0.0, decayed=frozenset())
    plain.step(backend.xp, params, {k: backend.asarray(to_numpy(g)) for k, g in grads.items()},
               plain.init(backend.xp, params), 0.1)  # fmt: skip
    for name, p in net.params.items():
        np.testing.assert_allclose(to_numpy(p), to_numpy(params[name]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weight_decay_with_sgd_or_adam_is_refused_not_ignored(toy_net, toy_data, optimizer):
    before = {k: to_numpy(v).copy() for k, v in toy_net.params.items()}
    with pytest.raises(ValueError, match=r"weight_decay=0\.01 is AdamW's .* takes the L2 term reg"):
        toy_net.train(*toy_data, *toy_data, num_iters=2, optimizer=optimizer, weight_decay=0.01)
    for name, value in toy_net.params.items():
        np.testing.assert_array_equal(to_numpy(value), before[name])


def test_weight_decay_with_sgd_or_adam_is_refused_by_make_optimizer_too():
    with pytest.raises(ValueError, match=r"weight_decay=0\.1 is AdamW's .* takes the L2 term reg"):
        make_optimizer("sgd", reg=0.0, weight_decay=0.1, decayed=frozenset({"W"}))


#: best's settings on a small net, and what they gave (NumPy, float64): reg=0,
#: weight_decay=0.3 with AdamW, as recorded at 3524cc8.
BEST_LIKE = {"learning_rate": 1e-2, "learning_rate_decay": 1.0, "schedule": "cosine",
             "num_iters": 30, "batch_size": 20, "shuffle": True, "optimizer": "adamw",
             "dropout": 0.5}  # fmt: skip
BEFORE = {"loss": 1.1154846454832277, "sum_W1": 1.7411722522015203, "sum_W2_sq": 6.177165161556388}


def best_like_run(backend, **regularisation):
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((60, 12)), rng.integers(0, 3, 60)
    net = TwoLayerNet(12, 16, 3, seed=0, init="he", backend=backend)
    stats = net.train(X, y, X, y, **BEST_LIKE, **regularisation)
    return net, {"loss": stats["loss_history"][-1],
                 "sum_W1": float(net.xp.sum(net.params["W1"])),
                 "sum_W2_sq": float(net.xp.sum(net.params["W2"] ** 2))}  # fmt: skip


def test_adamw_weight_decay_trains_as_recorded_and_reg_adds_an_l2_term(backend):
    """reg=0, weight_decay=0.3 (how the best recipes say it) gives the recorded numbers;
    reg=0.3 alone is an L2 term and no decay (another training); both shrink W2 more."""
    net, found = best_like_run(backend, reg=0.0, weight_decay=0.3)
    rtol = 1e-10 if net.dtype == backend.dtype("float64") else 1e-4
    for name, value in BEFORE.items():
        np.testing.assert_allclose(found[name], value, rtol=rtol, err_msg=name)
    assert net.last_training["settings"]["weight_decay"] == 0.3
    l2_net, l2 = best_like_run(backend, reg=0.3)  # weight_decay defaults to 0
    assert (l2_net.last_training["settings"]["reg"],
            l2_net.last_training["settings"]["weight_decay"]) == (0.3, 0.0)  # fmt: skip
    assert l2 != found
    _, both = best_like_run(backend, reg=0.3, weight_decay=0.3)
    assert both["sum_W2_sq"] < found["sum_W2_sq"]
