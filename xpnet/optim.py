"""Minibatch stochastic gradient descent, with momentum and weight decay."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from array_api_compat import array_namespace

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent on a dict of parameter arrays.

    With gradient ``g`` and the L2 term ``weight_decay * p`` of the parameters in
    ``decayed``, plain SGD updates ``p -= lr * (g + weight_decay * p)``; with
    ``momentum = mu > 0`` it keeps a velocity per parameter,
    ``v = mu * v - lr * (g + weight_decay * p)`` and ``p += v``.

    Updates are written as augmented assignments, so a library whose arrays are
    mutable (NumPy, CuPy, torch) updates them in place, without temporary arrays,
    and one whose arrays are immutable (JAX) stores the new arrays under the same
    keys.

    Parameters
    ----------
    params : dict of str to array
        The parameters, updated by :meth:`step`.
    learning_rate : float
        The step size; a schedule may change it between steps.
    momentum : float, default 0.0
        The momentum coefficient ``mu`` in [0, 1).
    weight_decay : float, default 0.0
        The L2 regularisation strength: the loss's ``0.5 * reg * sum(p**2)`` term,
        applied here so that the gradients need not carry it.
    decayed : collection of str, default ()
        The names of the parameters the L2 term applies to.
    """

    def __init__(
        self,
        params: dict[str, Any],
        learning_rate: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        decayed: Collection[str] = (),
    ):
        self.params = params
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.decayed = frozenset(decayed)
        self.velocity: dict[str, Any] = {}
        if momentum > 0:
            for name, p in params.items():
                self.velocity[name] = array_namespace(p).zeros_like(p)

    def step(self, grads: dict[str, Any]) -> None:
        """Update every parameter from its gradient, ``grads[name]``, which it may overwrite."""
        lr, mu = self.learning_rate, self.momentum
        for name, g in grads.items():
            decay = self.weight_decay if name in self.decayed else 0.0
            g *= lr
            if mu > 0:
                if decay:
                    g += (lr * decay) * self.params[name]
                self.velocity[name] *= mu
                self.velocity[name] -= g
                self.params[name] += self.velocity[name]
            else:
                if decay:
                    self.params[name] *= 1 - lr * decay
                self.params[name] -= g
