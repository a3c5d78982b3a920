"""SGD updates, with and without momentum, on every backend."""

from __future__ import annotations

import numpy as np

from xpnet import resolve_backend, to_numpy
from xpnet.optim import SGD


def test_plain_sgd_steps_against_the_gradient(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([1.0, -2.0]))}
    SGD(params, learning_rate=0.1).step({"w": b.asarray(np.array([10.0, 10.0]))})
    np.testing.assert_allclose(to_numpy(params["w"]), [0.0, -3.0])


def test_momentum_follows_v_equals_mu_v_minus_lr_g(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([1.0]))}
    sgd = SGD(params, learning_rate=0.1, momentum=0.9)
    sgd.step({"w": b.asarray(np.array([1.0]))})  # v = -0.1,          w = 0.9
    sgd.step({"w": b.asarray(np.array([1.0]))})  # v = -0.09 - 0.1,   w = 0.71
    np.testing.assert_allclose(to_numpy(sgd.velocity["w"]), [-0.19])
    np.testing.assert_allclose(to_numpy(params["w"]), [0.71])


def test_learning_rate_changes_take_effect_on_the_next_step(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([0.0]))}
    sgd = SGD(params, learning_rate=1.0)
    sgd.learning_rate *= 0.5
    sgd.step({"w": b.asarray(np.array([1.0]))})
    np.testing.assert_allclose(to_numpy(params["w"]), [-0.5])


def test_weight_decay_adds_the_l2_gradient_to_decayed_parameters(backend):
    b = resolve_backend(backend)
    params = {"W": b.asarray(np.array([2.0])), "b": b.asarray(np.array([2.0]))}
    sgd = SGD(params, learning_rate=0.1, weight_decay=0.5, decayed=["W"])
    sgd.step({"W": b.asarray(np.array([1.0])), "b": b.asarray(np.array([1.0]))})
    # W -= 0.1 * (1 + 0.5 * 2);  b -= 0.1 * 1 (not decayed)
    np.testing.assert_allclose(to_numpy(params["W"]), [1.8])
    np.testing.assert_allclose(to_numpy(params["b"]), [1.9])


def test_weight_decay_with_momentum(backend):
    b = resolve_backend(backend)
    params = {"W": b.asarray(np.array([2.0]))}
    sgd = SGD(params, learning_rate=0.1, momentum=0.9, weight_decay=0.5, decayed=["W"])
    sgd.step({"W": b.asarray(np.array([1.0]))})  # v = -0.1 * (1 + 1) = -0.2, W = 1.8
    sgd.step({"W": b.asarray(np.array([1.0]))})  # v = -0.18 - 0.1 * (1 + 0.9), W = 1.43
    np.testing.assert_allclose(to_numpy(sgd.velocity["W"]), [-0.37])
    np.testing.assert_allclose(to_numpy(params["W"]), [1.43])


def test_training_with_weight_decay_matches_the_regularised_gradient(backend):
    """One SGD step with the L2 term in the optimizer equals one on the lab's full gradient."""
    from xpnet import TwoLayerNet

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    net = TwoLayerNet(5, 6, 3, std=0.5, backend=backend, seed=1)
    before = {k: to_numpy(v).copy() for k, v in net.params.items()}
    _, grads = net.loss(X, y, reg=0.3)
    net.train(X, y, X, y, learning_rate=0.1, reg=0.3, num_iters=1, batch_size=8, shuffle=True)
    for name, g in grads.items():
        np.testing.assert_allclose(to_numpy(net.params[name]), before[name] - 0.1 * g, rtol=1e-12)
