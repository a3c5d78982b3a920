"""A large matrix product as two halves of its rows, each one BLAS call on one thread,
the halves on up to two threads.

At 51 million multiply-adds and more (`best`'s 128 x 784 by 784 x 2048 is 205 million) the
BLAS library's own second thread makes a step up to 1.6 times as fast on an idle machine but
1.3 to 3.8 times as slow on a busy one, where its threads spin waiting for each other
(``benchmarks/THREADS.md``). Two halves on xpnet's own threads get most of the first and
none of the second: a half that waits sleeps and leaves its core to the other. And they give
the same bits on one thread or two, because the halves are the same two calls wherever they
run; BLAS libraries sum a product's inner dimension in blocks whose size depends on their
thread count, so their threads change a product's last bits.

:func:`matmul` is what :mod:`xpnet.functional` calls for the two large products of a
step (``X @ W1`` and ``X.T @ dL/dhidden``); it is ``a @ b`` except for a product of more
than :data:`SPLIT_FROM` multiply-adds inside :func:`row_halves`, which
:func:`xpnet.backend.using_threads` enters for NumPy, array-api-strict and torch on the
CPU.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from xpnet._typing import Array, Namespace

__all__ = ["SPLIT_FROM", "matmul", "product_size", "row_halves"]

#: Products of this many multiply-adds or fewer are not split. Below it, on a machine whose
#: cores other work keeps busy, handing a half to a second thread that must wait for a core
#: cost more than the half: at the lab's 100 x 784 by 784 x 175 (13.7 million) the steps ran
#: at 0.49 (float32) and 0.77 (float64) of one thread's speed; at 51 million (128 x 784 by
#: 784 x 512), at 0.94 in that run and 0.61 to 0.73 in another, where on a quiet machine
#: they ran 1.2 to 1.4 times as fast (``benchmarks/THREADS.md``).
SPLIT_FROM = 40_000_000


def product_size(rows: int, inputs: int, outputs: int) -> int:
    """The multiply-adds of a ``(rows, inputs)`` by ``(inputs, outputs)`` matrix product:
    a training step's largest is its batch by the first layer's weights."""
    return rows * inputs * outputs


class _Halves:
    """Where the first half of a product runs: on a helper thread, or (``helper`` None)
    on the caller's, before the second."""

    def __init__(self, threads: int):
        self.helper = (
            ThreadPoolExecutor(1, thread_name_prefix="xpnet-product", initializer=_one_thread)
            if threads > 1
            else None
        )

    def start(self, product: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """Start ``product(*args, **kwargs)``; return what waits for its result. On the
        helper it runs in a copy of the caller's context, so NumPy's ``errstate`` (a
        context variable) holds there as in the caller."""
        if self.helper is None:
            result = product(*args, **kwargs)
            return lambda: result
        context = contextvars.copy_context()
        return self.helper.submit(context.run, product, *args, **kwargs).result


def _one_thread() -> None:
    """The helper thread's own pools at one thread: torch's (OpenMP's and MKL's counts are
    each thread's own); the BLAS libraries' that threadpoolctl sets are the process's."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


_HALVES: contextvars.ContextVar[_Halves | None] = contextvars.ContextVar(
    "xpnet_row_halves", default=None
)


@contextlib.contextmanager
def row_halves(threads: int | None) -> Iterator[None]:
    """Inside the body, :func:`matmul` computes a large product as two halves of its rows,
    the first on a helper thread when ``threads`` is 2 or more, else before the second on
    the caller's thread (the same bits either way); None: whole products, as outside (for
    a computation inside another's halves: a callback's, say). Only the calling thread
    (its context) sees it; the helper thread is stopped after."""
    halves = None if threads is None else _Halves(threads)
    token = _HALVES.set(halves)
    try:
        yield
    finally:
        _HALVES.reset(token)
        if halves is not None and halves.helper is not None:
            halves.helper.shutdown(wait=True)


def matmul(xp: Namespace, a: Array, b: Array) -> Array:
    """``a @ b`` (shapes (..., M, K) by (..., K, N)); inside :func:`row_halves`, when the
    product (of a stack, each network's) has more than :data:`SPLIT_FROM` multiply-adds,
    computed as ``a``'s first ``M // 2`` rows by ``b`` and its other rows by ``b``, joined."""
    halves = _HALVES.get()
    if halves is None or product_size(a.shape[-2], a.shape[-1], b.shape[-1]) <= SPLIT_FROM:
        return a @ b
    cut = a.shape[-2] // 2
    top, bottom = a[..., :cut, :], a[..., cut:, :]
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):  # into one array: no copy
        stack = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])  # K networks', or ()
        out = np.empty((*stack, a.shape[-2], b.shape[-1]), dtype=np.result_type(a, b))
        upper = halves.start(np.matmul, top, b, out=out[..., :cut, :])
        np.matmul(bottom, b, out=out[..., cut:, :])
        upper()
        return out
    wait_upper = halves.start(operator.matmul, top, b)
    lower = bottom @ b
    return xp.concat([wait_upper(), lower], axis=-2)
