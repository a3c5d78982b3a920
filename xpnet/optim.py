"""Optimisers: minibatch stochastic gradient descent, with momentum and weight decay.

An optimiser is a small frozen object of settings with two methods: ``init(params)``
returns its state (a dict of arrays, possibly empty), and ``step(params, grads,
state, learning_rate)`` updates ``params`` and ``state``. Updates are augmented
assignments to dict items, so a library whose arrays are mutable (NumPy, CuPy,
torch) updates them in place, without temporary arrays and at fixed addresses (as a
CUDA graph needs), and one whose arrays are immutable (JAX) stores the new arrays
under the same keys. ``learning_rate`` may be a Python float or a 0-d array on the
device, which is how compiled runs pass it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpnet.backend import array_namespace

__all__ = ["SGD"]

Params = dict[str, Any]


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with momentum and L2 weight decay.

    With gradient ``g`` and the L2 term ``weight_decay * p`` of the parameters in
    ``decayed``, plain SGD updates ``p -= lr * (g + weight_decay * p)``; with
    ``momentum = mu > 0`` it keeps a velocity per parameter,
    ``v = mu * v - lr * (g + weight_decay * p)`` and ``p += v``.

    Parameters
    ----------
    momentum : float, default 0.0
        The momentum coefficient ``mu`` in [0, 1).
    weight_decay : float, default 0.0
        The L2 regularisation strength: the loss's ``0.5 * reg * sum(p**2)`` term,
        applied here so that the gradients need not carry it.
    decayed : frozenset of str, default empty
        The names of the parameters the L2 term applies to.
    """

    momentum: float = 0.0
    weight_decay: float = 0.0
    decayed: frozenset[str] = frozenset()

    def init(self, params: Params) -> dict[str, Any]:
        """The optimiser's state for ``params``: the velocities (zero) when ``momentum > 0``."""
        if self.momentum == 0:
            return {}
        return {"velocity": {name: array_namespace(p).zeros_like(p) for name, p in params.items()}}

    def step(
        self, params: Params, grads: Params, state: dict[str, Any], learning_rate: Any
    ) -> None:
        """Update every parameter from its gradient, ``grads[name]``, which it may overwrite."""
        lr, mu = learning_rate, self.momentum
        for name, g in grads.items():
            decay = self.weight_decay if name in self.decayed else 0.0
            g *= lr
            if mu > 0:
                velocity = state["velocity"]
                if decay:
                    g += (lr * decay) * params[name]
                velocity[name] *= mu
                velocity[name] -= g
                params[name] += velocity[name]
            else:
                if decay:
                    params[name] *= 1 - lr * decay
                params[name] -= g
