"""Optimisers: SGD with momentum, Adam and AdamW, with the loss's L2 term and AdamW's
decoupled weight decay.

An optimiser is a small frozen object of settings with two methods: ``init(xp, params)``
returns its state (a dict of arrays, possibly empty), and ``step(xp, params, grads,
state, learning_rate)`` updates ``params`` and ``state``; ``xp`` is the Array API
namespace of the arrays, given by the caller. Updates are augmented
assignments to dict items, so a library whose arrays are mutable (NumPy, CuPy,
torch) updates them in place, without temporary arrays and at fixed addresses (as a
CUDA graph needs), and one whose arrays are immutable (JAX) stores the new arrays
under the same keys. ``learning_rate`` may be a Python float or a 0-d array on the
device, which is how compiled runs pass it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from xpnet._typing import OPTIMIZERS, Array, Namespace, OptimizerName
from xpnet.backend import device_of

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "make_optimizer"]

#: Named arrays: the network's parameters (:class:`xpnet._typing.Params`), their
#: gradients, or any other set of arrays an optimiser updates.
Arrays = Mapping[str, Array]


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

    def init(self, xp: Namespace, params: Arrays) -> dict[str, Any]:
        """The optimiser's state for ``params``: the velocities (zero) when ``momentum > 0``."""
        if self.momentum == 0:
            return {}
        return {"velocity": _zeros_like(xp, params)}

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: dict[str, Any],
        learning_rate: Array | float,
    ) -> None:  # fmt: skip
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

    def init(self, xp: Namespace, params: Arrays) -> dict[str, Any]:
        """Zero first and second moments, and the step count (a 0-d array, for compiled runs)."""
        first = next(iter(params.values()))
        return {
            "m": _zeros_like(xp, params),
            "v": _zeros_like(xp, params),
            "t": xp.zeros((), dtype=first.dtype, device=device_of(first)),
        }

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: dict[str, Any],
        learning_rate: Array | float,
    ) -> None:  # fmt: skip
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
            params[name] -= step_size * m[name] / (xp.sqrt(v[name]) / root_correction + self.eps)

    def _with_decay(self, name: str, g: Array, params: Arrays) -> Array:
        """The gradient plus the L2 term, for the parameters in ``decayed``."""
        if self.weight_decay and name in self.decayed:
            return g + self.weight_decay * params[name]
        return g


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay,
    ``p *= 1 - lr * weight_decay`` before the Adam step, as ``torch.optim.AdamW`` does.

    Parameters
    ----------
    weight_decay : float, default 0.01
        The decoupled weight decay of the parameters in ``decayed``.
    l2 : float, default 0.0
        An L2 term of the loss, ``0.5 * l2 * sum(p**2)``: its gradient ``l2 * p`` (at
        the parameters before the step) is added to the gradient of the parameters in
        ``decayed``, as :class:`Adam` adds its ``weight_decay``.
    """

    weight_decay: float = 0.01
    l2: float = 0.0

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: dict[str, Any],
        learning_rate: Array | float,
    ) -> None:  # fmt: skip
        if self.l2:  # the L2 term's gradient, at the parameters the gradient was taken at
            grads = {name: g + self.l2 * params[name] if name in self.decayed else g
                     for name, g in grads.items()}  # fmt: skip
        if self.weight_decay:
            for name in grads:
                if name in self.decayed:
                    params[name] *= 1 - learning_rate * self.weight_decay
        super().step(xp, params, grads, state, learning_rate)

    def _with_decay(self, name: str, g: Array, params: Arrays) -> Array:
        """Decoupled: the decay is applied to the parameters, not the gradient."""
        return g


def make_optimizer(
    name: OptimizerName, *, momentum: float, weight_decay: float, decayed: frozenset[str],
    reg: float = 0.0,
) -> SGD | Adam:  # fmt: skip
    """The optimiser called ``name`` (one of :data:`OPTIMIZERS`) with the run's settings;
    the names are checked by :class:`xpnet.training.TrainSettings`.

    Parameters
    ----------
    name : {"sgd", "adam", "adamw"}
    momentum : float
        SGD's.
    weight_decay : float
        The optimiser's own, as in ``torch.optim``: for SGD and Adam an L2 term whose
        gradient is added to the gradient, for AdamW the decoupled weight decay.
    decayed : frozenset of str
        The parameters that ``weight_decay`` and ``reg`` apply to.
    reg : float, default 0.0
        The loss's L2 term ``0.5 * reg * sum(p**2)``, whose gradient ``reg * p`` is added
        to the gradient: SGD's and Adam's ``weight_decay`` plus ``reg``, AdamW's ``l2``.
    """
    if name == "sgd":
        return SGD(momentum, weight_decay + reg, decayed)
    if name == "adam":
        return Adam(weight_decay=weight_decay + reg, decayed=decayed)
    return AdamW(weight_decay=weight_decay, decayed=decayed, l2=reg)


def _zeros_like(xp: Namespace, params: Arrays) -> dict[str, Array]:
    """Zeros shaped like each parameter, on its device."""
    return {name: xp.zeros_like(p) for name, p in params.items()}
