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
    g = {"w": b.asarray(np.array([1.0]))}
    sgd.step(g)  # v = -0.1,          w = 0.9
    sgd.step(g)  # v = -0.09 - 0.1,   w = 0.71
    np.testing.assert_allclose(to_numpy(sgd.velocity["w"]), [-0.19])
    np.testing.assert_allclose(to_numpy(params["w"]), [0.71])


def test_learning_rate_changes_take_effect_on_the_next_step(backend):
    b = resolve_backend(backend)
    params = {"w": b.asarray(np.array([0.0]))}
    sgd = SGD(params, learning_rate=1.0)
    sgd.learning_rate *= 0.5
    sgd.step({"w": b.asarray(np.array([1.0]))})
    np.testing.assert_allclose(to_numpy(params["w"]), [-0.5])
