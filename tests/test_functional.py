"""The lab's math, function by function: one-hot targets, the softmax, the gradients
of the loss with a dropout mask against numerical ones, and the loss of stacked networks.

The gradients without dropout are checked against autodiff (``test_autodiff_oracle.py``),
on random networks (``test_backprop_property.py``) and with the handout's answers
(``test_gradient_check.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import eval_numerical_gradient, rel_error, to_numpy
from xpnet.functional import cross_entropy, one_hot, softmax, softmax_loss


def test_one_hot_marks_each_rows_class(backend):
    y = backend.asarray(np.array([2, 0, 1, 2]))
    T = to_numpy(one_hot(backend.xp, y, 3, backend.dtype("float64")))
    np.testing.assert_array_equal(T, np.eye(3)[[2, 0, 1, 2]])


def test_softmax_is_exp_over_its_sum_and_takes_huge_scores(backend):
    scores = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    P = to_numpy(softmax(backend.xp, backend.asarray(scores)))
    np.testing.assert_allclose(P[0], np.exp(scores[0]) / np.exp(scores[0]).sum(), rtol=1e-12)
    np.testing.assert_allclose(P[1], [0.5, 0.5, 0.0], atol=1e-300)


@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
def test_gradients_with_a_fixed_dropout_mask_match_numerical_gradients(toy_net, toy_data, name):
    """The handout's gradient check on its toy model, with half the hidden units dropped."""
    X, y = toy_data
    net = toy_net
    xp = net.xp
    keep = np.random.default_rng(0).random((5, 10)) >= 0.5
    mask = net.backend.asarray(keep / 0.5)
    X_dev, T = net.backend.asarray(X), one_hot(xp, net.backend.asarray(y), 3, net.dtype)
    _, grads = cross_entropy(xp, net.params, X_dev, T, mask)
    original = net.params[name]

    def f(W):
        net.params[name] = W
        return float(cross_entropy(xp, net.params, X_dev, T, mask)[0])

    numerical = eval_numerical_gradient(f, original, verbose=False)
    net.params[name] = original
    assert rel_error(numerical, grads[name]) < 1e-7


def test_stacked_networks_each_get_their_own_loss_and_gradients(backend):
    """K networks stacked (``W1`` (K, D, H), ``reg`` (K,)) give each network's own loss and
    gradients, as one at a time; K == H, where a (K,) ``reg`` lined up with the hidden
    units instead of the networks would still broadcast."""
    rng = np.random.default_rng(0)
    K, N, D, H, C = 3, 5, 4, 3, 2
    shapes = {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}
    params = {name: rng.standard_normal((K, *shape)) for name, shape in shapes.items()}
    X, y, reg = (
        rng.standard_normal((K, N, D)),
        rng.integers(0, C, (K, N)),
        np.array([0.0, 1.0, 2.0]),
    )
    xp, on = backend.xp, backend.asarray
    loss, grads = softmax_loss(xp, {n: on(v) for n, v in params.items()}, on(X), on(y), on(reg))
    for k in range(K):
        alone = {name: on(value[k]) for name, value in params.items()}
        loss_k, grads_k = softmax_loss(xp, alone, on(X[k]), on(y[k]), float(reg[k]))
        np.testing.assert_allclose(to_numpy(loss)[k], to_numpy(loss_k), rtol=1e-12)
        for name in shapes:
            np.testing.assert_allclose(to_numpy(grads[name])[k], to_numpy(grads_k[name]),
                                       rtol=1e-12, atol=1e-15)  # fmt: skip
