"""Numerical gradients by centred differences, to check analytic backprop.

These work on the arrays of any backend, and the gradient comes back as an array
of the same library, dtype and device as ``x``. Where arrays are writeable, ``x``
is perturbed one element at a time in place (and restored), so ``f`` may read it
through a closure as the lab does; where they are not (JAX), ``f`` is called
with perturbed copies and must use its argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from xpnet._typing import Array, ArrayLike
from xpnet.backend import array_namespace, device_of, is_writeable_array, to_numpy

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error"]

_F = TypeVar("_F")  # what f returns
_R = TypeVar("_R")  # what read makes of it


def eval_numerical_gradient(
    f: Callable[[Array], Array | float], x: Array, verbose: bool = True, h: float = 1e-5
) -> Array:
    """Numerical gradient of a scalar function ``f`` at ``x``.

    ``df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)``.

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns a scalar (a float or a 0-d array). It may
        ignore its argument and read ``x`` through a closure, as the lab's
        ``lambda W: net.loss(X, y)[0]`` does: ``x`` is changed in place.
    x : array, any shape
        The point to differentiate at; restored before returning.
    verbose : bool, default True
        Print each index and its gradient.
    h : float, default 1e-5
        The step.

    Returns
    -------
    array, same shape, dtype, library and device as ``x``

    Raises
    ------
    ValueError
        If ``x`` is not float32 or float64: a step of ``h`` cannot be taken in
        integers, and float16 rounds it away.
    """
    _check_floating(x)
    grad = np.zeros(tuple(x.shape))
    for ix in np.ndindex(*grad.shape):
        f_plus, f_minus = _perturbed(f, x, ix, h, float)
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return _like(grad, x)


def eval_numerical_gradient_array(
    f: Callable[[Array], Array], x: Array, df: ArrayLike, h: float = 1e-5
) -> Array:
    """Numerical gradient of ``sum(f(x) * df)``: backprop of upstream ``df`` through ``f``.

    Parameters
    ----------
    f : callable
        Takes ``x`` and returns an array shaped like ``df``.
    x : array, any shape
        The point to differentiate at; changed in place and restored.
    df : array
        The upstream gradient, of the shape of ``f(x)``.
    h : float, default 1e-5
        The step.

    Returns
    -------
    array, same shape, dtype, library and device as ``x``

    Raises
    ------
    ValueError
        If ``x`` is not float32 or float64.
    """
    _check_floating(x)
    df = to_numpy(df)
    grad = np.zeros(tuple(x.shape))
    for ix in np.ndindex(*grad.shape):
        pos, neg = _perturbed(f, x, ix, h, lambda value: np.array(to_numpy(value)))
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return _like(grad, x)


def rel_error(x: ArrayLike, y: ArrayLike) -> float:
    """Largest relative error ``|x - y| / max(1e-8, |x| + |y|)``, on arrays of any library."""
    x, y = to_numpy(x).astype(np.float64), to_numpy(y).astype(np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _check_floating(x: Array) -> None:
    """Refuse arrays the centred difference would get wrong without a word."""
    xp = array_namespace(x)
    if x.dtype not in (xp.float32, xp.float64):
        raise ValueError(
            f"x has dtype {x.dtype}, in which a step of h cannot be taken (integers) or is "
            "rounded away (float16); pass a float64 copy, e.g. np.asarray(x, dtype=np.float64)"
        )


def _perturbed(
    f: Callable[[Array], _F], x: Array, ix: tuple[int, ...], h: float, read: Callable[[_F], _R]
) -> tuple[_R, _R]:
    """Evaluate ``f`` with ``x[ix]`` raised by ``h``, then lowered by ``h``."""
    if not is_writeable_array(x):
        xp = array_namespace(x)
        flat_index = int(np.ravel_multi_index(ix, tuple(x.shape)))
        size = int(np.prod(tuple(x.shape)))
        at_ix = xp.reshape(xp.arange(size, device=device_of(x)) == flat_index, x.shape)
        return read(f(xp.where(at_ix, x + h, x))), read(f(xp.where(at_ix, x - h, x)))
    old = float(x[ix])
    x[ix] = old + h
    f_plus = read(f(x))
    x[ix] = old - h
    f_minus = read(f(x))
    x[ix] = old
    return f_plus, f_minus


def _like(grad: np.ndarray, x: Array) -> Array:
    """``grad`` as an array of ``x``'s library, dtype and device."""
    if isinstance(x, np.ndarray):
        return grad.astype(x.dtype, copy=False)
    xp = array_namespace(x)
    return xp.asarray(grad, dtype=x.dtype, device=device_of(x))
