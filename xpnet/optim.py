"""Optimisers: SGD with momentum, Adam and AdamW, each with weight decay.

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
from xpnet.backend import device_of as _device

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "make_optimizer"]

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


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma and Ba, 2015), with the L2 term added to the gradient.

    With ``g`` the gradient plus ``weight_decay * p`` for the parameters in ``decayed``,
    and ``t`` the step count::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    as ``torch.optim.Adam`` computes it.

    Parameters
    ----------
    beta1, beta2 : float, default 0.9, 0.999
    eps : float, default 1e-8
    weight_decay : float, default 0.0
    decayed : frozenset of str, default empty
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    decayed: frozenset[str] = frozenset()

    def init(self, params: Params) -> dict[str, Any]:
        """Zero first and second moments, and the step count (a 0-d array, for compiled runs)."""
        first = next(iter(params.values()))
        xp = array_namespace(first)
        return {
            "m": {name: xp.zeros_like(p) for name, p in params.items()},
            "v": {name: xp.zeros_like(p) for name, p in params.items()},
            "t": xp.zeros((), dtype=first.dtype, device=_device(first)),
        }

    def step(
        self, params: Params, grads: Params, state: dict[str, Any], learning_rate: Any
    ) -> None:
        """Update every parameter from its gradient, ``grads[name]``, which it may overwrite."""
        b1, b2 = self.beta1, self.beta2
        state["t"] += 1
        t = state["t"]
        step_size = learning_rate / (1 - b1**t)
        root_correction = (1 - b2**t) ** 0.5
        m, v = state["m"], state["v"]
        for name, g in grads.items():
            g = self._with_decay(name, g, params)
            m[name] *= b1
            m[name] += (1 - b1) * g
            v[name] *= b2
            v[name] += (1 - b2) * (g * g)
            xp = array_namespace(v[name])
            params[name] -= step_size * m[name] / (xp.sqrt(v[name]) / root_correction + self.eps)

    def _with_decay(self, name: str, g: Any, params: Params) -> Any:
        """The gradient plus the L2 term, for the parameters in ``decayed``."""
        if self.weight_decay and name in self.decayed:
            return g + self.weight_decay * params[name]
        return g


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay,
    ``p *= 1 - lr * weight_decay`` before the Adam step, as ``torch.optim.AdamW`` does."""

    weight_decay: float = 0.01

    def step(
        self, params: Params, grads: Params, state: dict[str, Any], learning_rate: Any
    ) -> None:
        if self.weight_decay:
            for name in grads:
                if name in self.decayed:
                    params[name] *= 1 - learning_rate * self.weight_decay
        super().step(params, grads, state, learning_rate)

    def _with_decay(self, name: str, g: Any, params: Params) -> Any:
        """Decoupled: the decay is applied to the parameters, not the gradient."""
        return g


#: Optimisers by ``train(optimizer=...)`` name.
OPTIMIZERS = ("sgd", "adam", "adamw")


def make_optimizer(
    name: str, *, momentum: float, weight_decay: float, decayed: frozenset[str]
) -> SGD | Adam:
    """The optimiser called ``name`` with the run's settings (``momentum`` is SGD's).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name == "sgd":
        return SGD(momentum, weight_decay, decayed)
    if name == "adam":
        return Adam(weight_decay=weight_decay, decayed=decayed)
    if name == "adamw":
        return AdamW(weight_decay=weight_decay, decayed=decayed)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
