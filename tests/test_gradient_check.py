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
# at x0 = 1, w0 = 0.3, w1 = -0.2, b0 = 0.1, b1 = -0.3.
T1_WEIGHTS = {"w0": 0.3, "w1": -0.2, "b0": 0.1, "b1": -0.3}
T1_ANSWERS = {"w0": -0.2, "w1": 0.4, "b0": -0.2, "b1": 1.0}


def residual_block(xp, p, x0=1.0):
    """Forward and backward pass of T1; ``p`` holds w0, w1, b0, b1 in that order."""
    w0, w1, b0, b1 = p[0], p[1], p[2], p[3]
    x1 = xp.maximum(x0 * w0 + b0, 0.0)
    y1 = x1 * w1 + b1
    z = xp.maximum(y1 + x0, 0.0)
    dz_dy1 = xp.astype(y1 + x0 > 0, p.dtype)  # ReLU'
    dz_dx1 = dz_dy1 * w1
    dz_da = dz_dx1 * xp.astype(x0 * w0 + b0 > 0, p.dtype)  # a = x0 * w0 + b0
    grads = xp.stack([dz_da * x0, dz_dy1 * x1, dz_da, dz_dy1])
    return z, grads


def test_t1_residual_block_gradients(backend):
    b = resolve_backend(backend)
    p = b.asarray(np.array(list(T1_WEIGHTS.values())))
    z, analytic = residual_block(b.xp, p)
    assert float(z) == pytest.approx(0.62)
    numerical = eval_numerical_gradient(lambda p: residual_block(b.xp, p)[0], p, verbose=False)
    expected = np.array(list(T1_ANSWERS.values()))
    np.testing.assert_allclose(to_numpy(analytic), expected, atol=1e-12)
    np.testing.assert_allclose(to_numpy(numerical), expected, atol=1e-9)


# T4: d/dh_i of L = -sum_j y_j log P(y=j), with P = softmax(h), is P(y=i) - y_i.


def test_t4_softmax_cross_entropy_gradient_is_p_minus_y(backend):
    b = resolve_backend(backend)
    xp = b.xp
    rng = np.random.default_rng(4)
    h = b.asarray(rng.standard_normal((6, 5)))
    y = b.asarray(np.eye(5)[rng.integers(0, 5, 6)])

    def loss(h):
        log_p = h - xp.log(xp.sum(xp.exp(h), axis=1, keepdims=True))
        return -xp.sum(y * log_p)

    P = xp.exp(h) / xp.sum(xp.exp(h), axis=1, keepdims=True)
    numerical = eval_numerical_gradient(loss, h, verbose=False)
    assert rel_error(numerical, P - y) < 1e-7


@pytest.mark.parametrize("dtype", ["int64", "float16"])
def test_inputs_it_would_get_wrong_are_refused(dtype):
    x = np.array([1, 2, 3]).astype(dtype)
    with pytest.raises(ValueError, match="pass a float64 copy"):
        eval_numerical_gradient(lambda v: float(np.sum(v.astype(float) ** 2)), x, verbose=False)
    with pytest.raises(ValueError, match=f"dtype {dtype}"):
        eval_numerical_gradient_array(lambda v: v * 2, x, np.ones(3))
