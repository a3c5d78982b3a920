"""Optimisers: SGD with momentum, Adam and AdamW, with the loss's L2 term and AdamW's
decoupled weight decay. ``reg`` is the L2 term everywhere in xpnet (``torch.optim.SGD``
and ``Adam`` call theirs ``weight_decay``); ``weight_decay`` is AdamW's decoupled decay
only, as in ``torch.optim.AdamW``.

An optimiser is a small frozen object of settings with two methods: ``init(xp, params)``
returns its state (a dict of arrays, possibly empty), and ``step(xp, params, grads,
state, learning_rate)`` updates ``params`` and ``state``; ``xp`` is the Array API
namespace of the arrays, given by the caller. Updates are augmented
assignments to dict items, so a library whose arrays are mutable (NumPy, CuPy,
torch) updates them in place, without temporary arrays and at fixed addresses (as a
CUDA graph needs), and one whose arrays are immutable (JAX) stores the new arrays
under the same keys. ``learning_rate`` may be a Python float or a 0-d array on the
device, which is how compiled runs pass it.

For K networks trained together (:func:`xpnet.training.fit_many`), each parameter is
a stack of K (a first axis), ``learning_rate`` a (K,) array, and ``step``'s ``values``
gives the K networks' own ``momentum``, ``reg`` or ``weight_decay`` as (K,) arrays; the
fields then say only which terms the update has (a nonzero ``reg``: an L2 term).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import TypedDict

from xpnet._typing import OPTIMIZERS, Array, Namespace, OptimizerName
from xpnet.backend import device_of

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "OptimizerState", "make_optimizer", "per_network"]

#: Named arrays: the network's parameters (:class:`xpnet._typing.Params`), their
#: gradients, or any other set of arrays an optimiser updates.
Arrays = Mapping[str, Array]


class OptimizerState(TypedDict, total=False):
    """An optimiser's state, as its ``init`` makes it and its ``step`` updates it."""

    #: SGD with momentum: the velocity of each parameter.
    velocity: dict[str, Array]
    #: Adam: the first and second moments of each parameter's gradient...
    m: dict[str, Array]
    v: dict[str, Array]
    #: ...and the step count, a 0-d array of the parameters' dtype.
    t: Array


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with momentum and the loss's L2 term.

    With gradient ``g`` and the L2 term's gradient ``reg * p`` for the parameters in
    ``decayed``, plain SGD updates ``p -= lr * (g + reg * p)``; with ``momentum = mu > 0``
    it keeps a velocity per parameter, ``v = mu * v - lr * (g + reg * p)`` and ``p += v``.
    ``torch.optim.SGD`` calls ``reg`` ``weight_decay``.

    Parameters
    ----------
    momentum : float, default 0.0
        The momentum coefficient ``mu`` in [0, 1).
    reg : float, default 0.0
        The L2 regularisation strength: the loss's ``0.5 * reg * sum(p**2)`` term,
        applied here so that the gradients need not carry it.
    decayed : frozenset of str, default empty
        The names of the parameters the L2 term applies to.
    """

    momentum: float = 0.0
    reg: float = 0.0
    decayed: frozenset[str] = frozenset()

    def init(self, xp: Namespace, params: Arrays) -> OptimizerState:
        """The optimiser's state for ``params``: the velocities (zero) when ``momentum > 0``."""
        if self.momentum == 0:
            return {}
        return {"velocity": _zeros_like(xp, params)}

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: OptimizerState, learning_rate: Array | float, values: Arrays | None = None,
    ) -> None:  # fmt: skip
        """Update every parameter from its gradient, ``grads[name]``, which it may overwrite;
        ``values``: each network's ``momentum`` and ``reg`` when the parameters are a stack."""
        for name, g in grads.items():
            p = params[name]
            lr = per_network(xp, learning_rate, p)
            decayed = bool(self.reg) and name in self.decayed
            reg = per_network(xp, _value(values, "reg", self.reg), p)
            g *= lr
            if self.momentum > 0:
                velocity = state["velocity"]
                if decayed:
                    g += (lr * reg) * p
                velocity[name] *= per_network(xp, _value(values, "momentum", self.momentum), p)
                velocity[name] -= g
                params[name] += velocity[name]
            else:
                if decayed:
                    params[name] *= 1 - lr * reg
                params[name] -= g


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma and Ba, 2015), with the loss's L2 term added to the gradient.

    With ``g`` the gradient plus ``reg * p`` for the parameters in ``decayed``, and ``t``
    the step count::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    as ``torch.optim.Adam`` computes it (which calls ``reg`` ``weight_decay``).

    Parameters
    ----------
    beta1, beta2 : float, default 0.9, 0.999
    eps : float, default 1e-8
    reg : float, default 0.0
        The loss's L2 term ``0.5 * reg * sum(p**2)``.
    decayed : frozenset of str, default empty
        The names of the parameters the L2 term applies to.
    """

    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    reg: float = 0.0
    decayed: frozenset[str] = frozenset()

    def init(self, xp: Namespace, params: Arrays) -> OptimizerState:
        """Zero first and second moments, and the step count (a 0-d array, for compiled runs)."""
        first = next(iter(params.values()))
        return {
            "m": _zeros_like(xp, params),
            "v": _zeros_like(xp, params),
            "t": xp.zeros((), dtype=first.dtype, device=device_of(first)),
        }

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: OptimizerState, learning_rate: Array | float, values: Arrays | None = None,
    ) -> None:  # fmt: skip
        """Update every parameter from its gradient, ``grads[name]``, which it may overwrite;
        ``values``: each network's ``reg`` when the parameters are a stack."""
        b1, b2 = self.beta1, self.beta2
        state["t"] += 1
        t = state["t"]
        step_size = learning_rate / (1 - b1**t)
        root_correction = (1 - b2**t) ** 0.5
        m, v = state["m"], state["v"]
        for name, g in grads.items():
            g = self._with_decay(xp, name, g, params, values)
            m[name] *= b1
            m[name] += (1 - b1) * g
            v[name] *= b2
            v[name] += (1 - b2) * (g * g)
            denominator = xp.sqrt(v[name]) / root_correction + self.eps
            params[name] -= per_network(xp, step_size, g) * m[name] / denominator

    def _with_decay(
        self, xp: Namespace, name: str, g: Array, params: Arrays, values: Arrays | None
    ) -> Array:
        """The gradient plus the L2 term's, for the parameters in ``decayed``."""
        if self.reg and name in self.decayed:
            return g + per_network(xp, _value(values, "reg", self.reg), g) * params[name]
        return g


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay,
    ``p *= 1 - lr * weight_decay`` before the Adam step, as ``torch.optim.AdamW`` does.

    Parameters
    ----------
    beta1, beta2, eps, reg, decayed
        As for :class:`Adam`: the L2 term's gradient ``reg * p`` is taken at the
        parameters before the decay (``torch.optim.AdamW`` has no L2 term).
    weight_decay : float, default 0.01
        The decoupled weight decay of the parameters in ``decayed``.
    """

    weight_decay: float = 0.01

    def step(
        self, xp: Namespace, params: MutableMapping[str, Array], grads: Arrays,
        state: OptimizerState, learning_rate: Array | float, values: Arrays | None = None,
    ) -> None:  # fmt: skip
        if self.reg:  # the L2 term's gradient, at the parameters the gradient was taken at
            grads = {name: Adam._with_decay(self, xp, name, g, params, values)
                     for name, g in grads.items()}  # fmt: skip
        if self.weight_decay:
            decay = _value(values, "weight_decay", self.weight_decay)
            for name in grads:
                if name in self.decayed:
                    p = params[name]
                    params[name] *= 1 - per_network(xp, learning_rate, p) * per_network(
                        xp, decay, p
                    )
        super().step(xp, params, grads, state, learning_rate, values)

    def _with_decay(
        self, xp: Namespace, name: str, g: Array, params: Arrays, values: Arrays | None
    ) -> Array:
        """Decoupled: the decay is applied to the parameters, not the gradient."""
        return g


def make_optimizer(
    name: OptimizerName, *, decayed: frozenset[str], momentum: float = 0.0, reg: float = 0.0,
    weight_decay: float = 0.0,
) -> SGD | Adam:  # fmt: skip
    """The optimiser called ``name`` (one of :data:`OPTIMIZERS`) with the run's settings.

    Parameters
    ----------
    name : {"sgd", "adam", "adamw"}
    decayed : frozenset of str
        The parameters that ``reg`` and ``weight_decay`` apply to.
    momentum : float, default 0.0
        SGD's.
    reg : float, default 0.0
        The loss's L2 term ``0.5 * reg * sum(p**2)``, whose gradient ``reg * p`` is added
        to the gradient (``torch.optim.SGD``'s and ``Adam``'s ``weight_decay``).
    weight_decay : float, default 0.0
        AdamW's decoupled weight decay (``torch.optim.AdamW``'s ``weight_decay``).

    Raises
    ------
    ValueError
        For a ``weight_decay`` with SGD or Adam, whose L2 term is ``reg``.
    """
    if weight_decay and name != "adamw":
        raise ValueError(
            f"weight_decay={weight_decay!r} is AdamW's decoupled weight decay; {name} takes "
            "the L2 term reg instead: pass reg, or name='adamw'"
        )
    if name == "sgd":
        return SGD(momentum, reg, decayed)
    if name == "adam":
        return Adam(reg=reg, decayed=decayed)
    return AdamW(weight_decay=weight_decay, decayed=decayed, reg=reg)


def _value(values: Arrays | None, name: str, default: float) -> Array | float:
    """The networks' own ``name`` from ``values`` (a stack's), else the field's ``default``."""
    return default if values is None or name not in values else values[name]


def per_network(xp: Namespace, value: Array | float, like: Array) -> Array | float:
    """A learning rate or hyperparameter for the parameter ``like``: a float or 0-d array
    as it is; a (K,) array, one value per network of a stack, as (K, 1, ...), to broadcast
    over ``like`` (K, ...)."""
    if isinstance(value, (int, float)) or value.ndim == 0:
        return value
    return xp.reshape(value, (value.shape[0],) + (1,) * (like.ndim - 1))


def _zeros_like(xp: Namespace, params: Arrays) -> dict[str, Array]:
    """Zeros shaped like each parameter, on its device."""
    return {name: xp.zeros_like(p) for name, p in params.items()}
