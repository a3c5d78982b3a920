"""The gradient checker, and the handout's theory answers checked with it."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    rel_error,
    resolve_backend,
    to_numpy,
)
from xpnet.functional import backward, cross_entropy, forward


def test_numerical_gradient_of_a_quadratic(backend):
    b = resolve_backend(backend)
    x = b.asarray(np.array([[1.0, -2.0], [0.5, 3.0]]))

    def f(x):
        return b.xp.sum(x**2)

    grad = eval_numerical_gradient(f, x, verbose=False)
    assert b.owns(grad)
    np.testing.assert_allclose(to_numpy(grad), 2 * to_numpy(x), rtol=1e-9)
    np.testing.assert_array_equal(to_numpy(x), [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_numerical_gradient_prints_each_index_when_verbose(capsys):
    eval_numerical_gradient(lambda x: float(np.sum(x)), np.zeros(2))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["(0,)", "(1,)"]
    assert [float(line.split()[1]) for line in lines] == pytest.approx([1.0, 1.0])


def test_numerical_gradient_array_backprops_upstream_gradient(backend):
    b = resolve_backend(backend)
    rng = np.random.default_rng(0)
    x = b.asarray(rng.standard_normal((3, 4)))
    w = b.asarray(rng.standard_normal((4, 2)))
    df = rng.standard_normal((3, 2))
    grad = eval_numerical_gradient_array(lambda x: x @ w, x, df)
    # d(sum((x @ w) * df))/dx = df @ w.T
    assert rel_error(grad, df @ to_numpy(w).T) < 1e-7


def test_rel_error_is_the_handouts_formula():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-9])) == pytest.approx(1e-9 / 1e-8)


# T1: the simplified residual block
#   x1 = ReLU(x0 * w0 + b0),  y1 = x1 * w1 + b1,  z = ReLU(y1 + x0)
# at x0 = 1, w0 = 0.3, w1 = -0.2, b0 = 0.1, b1 = -0.3: a 1-1-1 network's forward pass
# (W1 = w0, b1 = b0, W2 = w1, b2 = b1), then a ReLU of its score plus the input.
T1_WEIGHTS = {"w0": 0.3, "w1": -0.2, "b0": 0.1, "b1": -0.3}
T1_ANSWERS = {"w0": -0.2, "w1": 0.4, "b0": -0.2, "b1": 1.0}
T1_PARAMS = {"W1": "w0", "b1": "b0", "W2": "w1", "b2": "b1"}


def t1_params(b, p):
    """The 1-1-1 network of T1 from ``p``: (w0, w1, b0, b1) in that order."""
    w0, w1, b0, b1 = (p[k : k + 1] for k in range(4))
    return {"W1": b.xp.reshape(w0, (1, 1)), "b1": b0, "W2": b.xp.reshape(w1, (1, 1)), "b2": b1}


def test_t1_residual_block_gradients_by_xpnets_backward_pass(backend):
    """xpnet's backward pass, given dz/dy1, gives the handout's answers; so does the
    numerical gradient of z."""
    b = resolve_backend(backend)
    xp = b.xp
    p, X = b.asarray(np.array(list(T1_WEIGHTS.values()))), b.asarray(np.array([[1.0]]))

    def z(p):
        _, y1 = forward(xp, t1_params(b, p), X)
        return xp.sum(xp.clip(y1 + X, min=0.0))

    params = t1_params(b, p)
    hidden, y1 = forward(xp, params, X)
    assert float(z(p)) == pytest.approx(0.62)
    dz_dy1 = xp.astype(y1 + X > 0, y1.dtype)  # ReLU'
    grads = backward(xp, params, X, hidden, dz_dy1)
    analytic = {weight: float(to_numpy(grads[name])[()].item()) for name, weight in
                T1_PARAMS.items()}  # fmt: skip
    numerical = to_numpy(eval_numerical_gradient(z, p, verbose=False))
    for k, (weight, answer) in enumerate(T1_ANSWERS.items()):
        assert analytic[weight] == pytest.approx(answer, abs=1e-12), weight
        assert numerical[k] == pytest.approx(answer, abs=1e-9), weight


# T4: d/dh_i of L = -sum_j y_j log P(y=j), with P = softmax(h), is P(y=i) - y_i.


def test_t4_softmax_cross_entropy_gradient_is_p_minus_y(backend):
    """xpnet's softmax cross-entropy, on scores h (a network whose hidden layer is the
    identity and W2 = h), has gradient (P - y) / N with respect to W2; so does the
    numerical gradient of the handout's L / N."""
    b = resolve_backend(backend)
    xp = b.xp
    rng = np.random.default_rng(4)
    h = b.asarray(rng.standard_normal((6, 5)))
    y = b.asarray(np.eye(5)[rng.integers(0, 5, 6)])

    def loss(h):
        log_p = h - xp.log(xp.sum(xp.exp(h), axis=1, keepdims=True))
        return -xp.sum(y * log_p) / 6

    P = xp.exp(h) / xp.sum(xp.exp(h), axis=1, keepdims=True)
    identity = b.asarray(np.eye(6))
    params = {"W1": identity, "b1": b.asarray(np.zeros(6)), "W2": h, "b2": b.asarray(np.zeros(5))}
    xpnet_loss, grads = cross_entropy(xp, params, identity, y)
    assert float(xpnet_loss) == pytest.approx(float(loss(h)), rel=1e-12)
    assert rel_error(grads["W2"], (P - y) / 6) < 1e-12
    numerical = eval_numerical_gradient(loss, h, verbose=False)
    assert rel_error(numerical, (P - y) / 6) < 1e-7


@pytest.mark.parametrize("dtype", ["int64", "float16"])
def test_inputs_it_would_get_wrong_are_refused(dtype):
    x = np.array([1, 2, 3]).astype(dtype)
    with pytest.raises(ValueError, match="pass a float64 copy"):
        eval_numerical_gradient(lambda v: float(np.sum(v.astype(float) ** 2)), x, verbose=False)
    with pytest.raises(ValueError, match=f"dtype {dtype}"):
        eval_numerical_gradient_array(lambda v: v * 2, x, np.ones(3))
