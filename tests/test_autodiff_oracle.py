"""The loss's gradients against an oracle that shares nothing with xpnet's backprop.

The same forward pass and loss, written here in plain PyTorch and in plain
``jax.numpy``, are differentiated by ``torch.autograd`` and ``jax.grad``; xpnet's
hand-written backward pass (:func:`~xpnet.functional.cross_entropy`,
:func:`~xpnet.functional.softmax_loss`) must give the same loss and the same four
gradients, in float64, with a dropout mask and with L2 regularisation. The oracle
tests run in the torch and jax sessions, where their library must be installed; xpnet's
side runs on NumPy, array-api-strict and the oracle's own library.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from xpnet import resolve_backend
from xpnet.backend import to_numpy
from xpnet.functional import cross_entropy, l2_penalty, one_hot, softmax_loss
from xpnet.testing import TOLERANCES, relative_difference

D, H, C, N = 6, 7, 4, 9
REG = 0.3  # large, so that the L2 term is a visible part of every weight's gradient
DROPOUT = 0.4
NAMES = ("W1", "b1", "W2", "b2")


def _library(name: str) -> ModuleType:
    """``name`` imported: a failure where ``XPNET_BACKENDS`` asks for it, else a skip."""
    entries = os.environ.get("XPNET_BACKENDS", "").split(",")
    requested = {entry.partition("@")[0] for entry in entries}
    if name in requested:
        return importlib.import_module(name)
    return pytest.importorskip(name)


def _problem() -> dict[str, np.ndarray]:
    """Parameters, inputs, labels and an inverted-dropout mask, all float64 NumPy."""
    rng = np.random.default_rng(20)
    keep = rng.random((N, H)) >= DROPOUT
    return {
        "W1": 0.5 * rng.standard_normal((D, H)),
        "b1": 0.1 * rng.standard_normal(H),
        "W2": 0.5 * rng.standard_normal((H, C)),
        "b2": 0.1 * rng.standard_normal(C),
        "X": rng.standard_normal((N, D)),
        "y": rng.integers(0, C, N),
        "mask": keep / (1 - DROPOUT),
    }


def _xpnet_loss(backend_name: str, case: str, problem: dict[str, np.ndarray]) -> tuple[Any, dict]:
    """xpnet's loss and gradients on ``backend_name``, as NumPy.

    ``"l2"``: :func:`softmax_loss`, the lab's loss with L2 regularisation.
    ``"dropout"``: :func:`cross_entropy` with the dropout mask, plus :func:`l2_penalty`,
    the training step's loss; its gradients are the cross-entropy's (the optimiser adds
    the L2 term's), so the oracle's are taken of the cross-entropy alone.
    """
    if backend_name != "numpy":
        _library(backend_name)
    backend = resolve_backend(backend_name)
    xp = backend.xp
    params = {name: backend.asarray(problem[name], backend.dtype("float64")) for name in NAMES}
    X = backend.asarray(problem["X"], backend.dtype("float64"))
    y = backend.asarray(problem["y"])
    if case == "l2":
        loss, grads = softmax_loss(xp, params, X, y, REG)
    else:
        mask = backend.asarray(problem["mask"], backend.dtype("float64"))
        T = one_hot(xp, y, C, X.dtype)
        loss, grads = cross_entropy(xp, params, X, T, mask)
        loss = loss + l2_penalty(xp, params, REG)
    return to_numpy(loss), {name: to_numpy(g) for name, g in grads.items()}


def _torch_oracle(case: str, problem: dict[str, np.ndarray]) -> tuple[Any, dict]:
    """The loss in plain PyTorch, and ``torch.autograd``'s gradients of it."""
    torch = _library("torch")
    params = {name: torch.tensor(problem[name], requires_grad=True) for name in NAMES}
    X, y = torch.tensor(problem["X"]), torch.tensor(problem["y"])
    hidden = torch.relu(X @ params["W1"] + params["b1"])
    if case == "dropout":
        hidden = hidden * torch.tensor(problem["mask"])
    scores = hidden @ params["W2"] + params["b2"]
    data_loss = torch.mean(torch.logsumexp(scores, dim=1) - scores[torch.arange(N), y])
    penalty = 0.5 * REG * (torch.sum(params["W1"] ** 2) + torch.sum(params["W2"] ** 2))
    differentiated = data_loss if case == "dropout" else data_loss + penalty
    grads = torch.autograd.grad(differentiated, [params[name] for name in NAMES])
    loss = (data_loss + penalty).detach().numpy()
    return loss, {name: g.numpy() for name, g in zip(NAMES, grads, strict=True)}


def _jax_oracle(case: str, problem: dict[str, np.ndarray]) -> tuple[Any, dict]:
    """The loss in plain ``jax.numpy``, and ``jax.grad``'s gradients of it."""
    jax = _library("jax")
    jnp = jax.numpy
    if not jax.config.read("jax_enable_x64"):
        pytest.fail("the oracle needs JAX in float64 (tests/conftest.py turns on jax_enable_x64)")
    X, y = jnp.asarray(problem["X"]), jnp.asarray(problem["y"])

    def data_loss(params: dict[str, Any]) -> Any:
        hidden = jnp.maximum(X @ params["W1"] + params["b1"], 0.0)
        if case == "dropout":
            hidden = hidden * jnp.asarray(problem["mask"])
        scores = hidden @ params["W2"] + params["b2"]
        picked = jnp.take_along_axis(scores, y[:, None], axis=1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(scores, axis=1) - picked)

    def penalty(params: dict[str, Any]) -> Any:
        return 0.5 * REG * (jnp.sum(params["W1"] ** 2) + jnp.sum(params["W2"] ** 2))

    def full_loss(params: dict[str, Any]) -> Any:
        return data_loss(params) + penalty(params)

    params = {name: jnp.asarray(problem[name]) for name in NAMES}
    grads = jax.grad(data_loss if case == "dropout" else full_loss)(params)
    return np.asarray(full_loss(params)), {name: np.asarray(grads[name]) for name in NAMES}


def _assert_same(actual: tuple[Any, dict], oracle: tuple[Any, dict]) -> None:
    (loss, grads), (oracle_loss, oracle_grads) = actual, oracle
    tolerance = TOLERANCES["float64"]
    assert relative_difference(loss, oracle_loss) < tolerance, (float(loss), float(oracle_loss))
    for name in NAMES:
        assert grads[name].shape == oracle_grads[name].shape, name
        assert relative_difference(grads[name], oracle_grads[name]) < tolerance, name


def test_the_problem_exercises_dropout_and_relu():
    """The mask drops some units and keeps others, and some kept units are off (ReLU)."""
    problem = _problem()
    assert 0 < np.count_nonzero(problem["mask"]) < problem["mask"].size
    pre_activation = problem["X"] @ problem["W1"] + problem["b1"]
    assert 0 < np.count_nonzero(pre_activation > 0) < pre_activation.size
    assert np.min(np.abs(pre_activation)) > 1e-6  # no kink within rounding


@pytest.mark.backend("torch")
@pytest.mark.parametrize("case", ["l2", "dropout"])
@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "torch"])
def test_gradients_match_torch_autograd(backend_name, case):
    problem = _problem()
    _assert_same(_xpnet_loss(backend_name, case, problem), _torch_oracle(case, problem))


@pytest.mark.backend("jax")
@pytest.mark.parametrize("case", ["l2", "dropout"])
@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict", "jax"])
def test_gradients_match_jax_grad(backend_name, case):
    problem = _problem()
    _assert_same(_xpnet_loss(backend_name, case, problem), _jax_oracle(case, problem))


def test_the_oracle_sees_a_wrong_gradient():
    """A gradient off by a little in one entry is caught at the float64 tolerance."""
    problem = _problem()
    loss, grads = _xpnet_loss("numpy", "l2", problem)
    grads["b2"] = grads["b2"].copy()
    grads["b2"][0] += 1e-6
    with pytest.raises(AssertionError, match="b2"):
        _assert_same((loss, grads), _xpnet_loss("numpy", "l2", problem))
