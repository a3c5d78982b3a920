"""Backprop against numerical gradients on randomly sized nets and inputs (hypothesis).

``nox -s gradcheck`` runs these with many more examples (``XPNET_GRADCHECK_EXAMPLES=60``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xpnet import TwoLayerNet, eval_numerical_gradient, to_numpy

GRADCHECK = settings(
    max_examples=int(os.environ.get("XPNET_GRADCHECK_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

pytestmark = pytest.mark.gradcheck

problems = st.fixed_dictionaries(
    {
        "N": st.integers(1, 8),
        "D": st.integers(1, 6),
        "H": st.integers(1, 8),
        "C": st.integers(2, 5),
        "reg": st.sampled_from([0.0, 0.05, 1.0]),
        "seed": st.integers(0, 2**32 - 1),
    }
)

# Centred differences straddle the ReLU's kink when a pre-activation lies within
# the step of zero; such points have no well-defined numerical gradient.
KINK_MARGIN = 1e-3


def make(backend: str, dtype: str, p: dict) -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(p["seed"])
    net = TwoLayerNet(p["D"], p["H"], p["C"], std=0.5, backend=backend, dtype=dtype, seed=p["seed"])
    net.params["b1"] = net.backend.asarray(rng.standard_normal(p["H"]) * 0.1, dtype=net.dtype)
    X = rng.standard_normal((p["N"], p["D"]))
    y = rng.integers(0, p["C"], p["N"])
    W1, b1 = to_numpy(net.params["W1"]).astype(np.float64), to_numpy(net.params["b1"])
    assume(np.min(np.abs(X @ W1 + b1)) > KINK_MARGIN)
    return net, X, y


def numerical_gradients(net: TwoLayerNet, X, y, reg: float) -> dict:
    result = {}
    for name in net.params:
        original = net.params[name]

        def f(W, name=name):
            net.params[name] = W
            return net.loss(X, y, reg=reg)[0]

        result[name] = eval_numerical_gradient(f, original, verbose=False)
        net.params[name] = original
    return result


# Gradients smaller in norm than a floor are compared absolutely, because their
# absolute error does not shrink with them. In float64 the floor is set by the
# centred differences (h = 1e-5, loss of order 1): about eps * |f| / h ~ 1e-11 of
# absolute error, so a relative 1e-7 of a gradient below 1e-4 is below what the
# method resolves. In float32 the analytic gradient is a sum of terms of order 1
# that may cancel, with about eps32 ~ 1e-7 of absolute error: the floor is 1e-2.
FLOORS = {"float64": 1e-4, "float32": 1e-2}


def normwise_error(a, b, floor: float) -> float:
    """``|a - b| / max(|a| + |b|, floor)`` in the 2-norm.

    Normwise rather than the lab's elementwise ``rel_error``: on random nets an
    entry of 1e-5 carries the same absolute rounding error as a large one.
    """
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    scale = max(np.linalg.norm(a) + np.linalg.norm(b), floor)
    return float(np.linalg.norm(a - b) / scale)


@GRADCHECK
@given(p=problems)
def test_float64_gradients_match_to_1e7(backend, p):
    net, X, y = make(backend, "float64", p)
    _, grads = net.loss(X, y, reg=p["reg"])
    numerical = numerical_gradients(net, X, y, p["reg"])
    for name in grads:
        assert normwise_error(numerical[name], grads[name], FLOORS["float64"]) < 1e-7, name


@GRADCHECK
@given(p=problems)
def test_float32_gradients_match_the_float64_numerical_gradient(backend, p):
    """float32 centred differences are mostly rounding error, so the reference is float64."""
    net32, X, y = make(backend, "float32", p)
    _, grads = net32.loss(X, y, reg=p["reg"])
    net64 = TwoLayerNet(p["D"], p["H"], p["C"], backend="numpy", dtype="float64")
    net64.params = {name: to_numpy(v).astype(np.float64) for name, v in net32.params.items()}
    numerical = numerical_gradients(net64, X, y, p["reg"])
    for name in grads:
        assert normwise_error(grads[name], numerical[name], FLOORS["float32"]) < 1e-5, name
