"""The lab's math, function by function: one-hot targets, the softmax, and the gradients
of the loss with a dropout mask against numerical ones.

The gradients without dropout are checked against autodiff (``test_autodiff_oracle.py``),
on random networks (``test_backprop_property.py``) and with the handout's answers
(``test_gradient_check.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import eval_numerical_gradient, rel_error, to_numpy
from xpnet.functional import cross_entropy, one_hot, softmax


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
