"""Minibatch stochastic gradient descent, with momentum."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent on a dict of parameter arrays.

    Plain SGD updates ``p -= lr * g``; with ``momentum = mu > 0`` it keeps a
    velocity per parameter, ``v = mu * v - lr * g`` and ``p += v``.

    Updates are written as augmented assignments to the dict items, so a library
    whose arrays are mutable (NumPy, CuPy, torch) updates them in place, and one
    whose arrays are immutable (JAX) stores the new arrays under the same keys.

    Parameters
    ----------
    params : dict of str to array
        The parameters, updated by :meth:`step`.
    learning_rate : float
        The step size; a schedule may change it between steps.
    momentum : float, default 0.0
        The momentum coefficient ``mu`` in [0, 1).
    """

    def __init__(self, params: dict[str, Any], learning_rate: float, momentum: float = 0.0):
        self.params = params
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.velocity: dict[str, Any] = {}
        if momentum > 0:
            for name, p in params.items():
                self.velocity[name] = array_namespace(p).zeros_like(p)

    def step(self, grads: dict[str, Any]) -> None:
        """Update every parameter from its gradient, ``grads[name]``."""
        lr, mu = self.learning_rate, self.momentum
        for name, g in grads.items():
            if mu > 0:
                self.velocity[name] *= mu
                self.velocity[name] -= lr * g
                self.params[name] += self.velocity[name]
            else:
                self.params[name] -= lr * g
