"""The lab's math: the two-layer network's forward pass, softmax loss and backward pass.

The network computes::

    hidden = ReLU(X @ W1 + b1)          # (N, H)
    scores = hidden @ W2 + b2           # (N, C)
    loss   = mean_i -log softmax(scores_i)[y_i] + 0.5 * reg * (sum(W1**2) + sum(W2**2))

Pure functions of ``(xp, params, ...)``, as ``torch.nn.functional``: ``xp`` is the Array
API namespace of the arrays, so the same lines run on NumPy, CuPy, PyTorch, JAX and
array-api-strict, eagerly or compiled (:class:`xpnet.TwoLayerNet` and :mod:`xpnet.training`).
Each takes one network's arrays, or K networks' stacked on a first axis (``W1`` (K, D, H),
``X`` (K, N, D), ``reg`` (K,)), for :func:`xpnet.training.fit_many`.
"""

from __future__ import annotations

from xpnet._typing import Array, ArrayDType, Namespace, Params
from xpnet.backend import device_of, matmul

__all__ = [
    "L2_WEIGHTS",
    "backward",
    "cross_entropy",
    "forward",
    "l2_penalty",
    "one_hot",
    "softmax",
    "softmax_loss",
]

#: The weights the L2 penalty applies to (not the biases).
L2_WEIGHTS = ("W1", "W2")


def forward(
    xp: Namespace, params: Params, X: Array, dropout: Array | None = None
) -> tuple[Array, Array]:
    """The hidden activations and the class scores.

    Parameters
    ----------
    xp : module
        The Array API namespace of the arrays.
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    X : array, shape (N, D)
    dropout : array, shape (N, H), optional
        Inverted dropout's mask: 0 for a dropped unit, ``1 / (1 - rate)`` for a kept one.
        Training only; None at prediction.

    Returns
    -------
    hidden : array, shape (N, H)
        ``ReLU(X @ W1 + b1)``, times the dropout mask.
    scores : array, shape (N, C)
        ``hidden @ W2 + b2``, the scores before the softmax.
    """
    pre_activation = matmul(xp, X, params["W1"])  # X @ W1, on two threads where it pays
    pre_activation += _rows(xp, params["b1"])  # in place where mutable: no extra (N, H) array
    hidden = xp.clip(pre_activation, min=0.0)  # ReLU; a Python bound needs no device constant
    if dropout is not None:
        hidden *= dropout
    scores = hidden @ params["W2"]
    scores += _rows(xp, params["b2"])
    return hidden, scores


def backward(
    xp: Namespace, params: Params, X: Array, hidden: Array, dscores: Array,
    dropout: Array | None = None,
) -> Params:  # fmt: skip
    """The gradients of the parameters, from the gradient of the scores: :func:`forward`
    in reverse.

    Parameters
    ----------
    xp, params, X, dropout
        As for :func:`forward`.
    hidden : array, shape (N, H)
        The hidden activations :func:`forward` returned.
    dscores : array, shape (N, C)
        ``dL/dscores``, the gradient of a loss with respect to the scores.

    Returns
    -------
    dict
        ``dL/dW1`` (D, H), ``dL/db1`` (H,), ``dL/dW2`` (H, C), ``dL/db2`` (C,).
    """
    # scores = hidden @ W2 + b2: dL/dW2 = hidden.T @ dscores, computed as its transpose
    # (dscores.T @ hidden).T, a product whose layout BLAS libraries (torch's above all)
    # run several times faster for a few classes; dL/db2 = sum_i dscores_i
    dW2 = _T(xp, _T(xp, dscores) @ hidden)
    db2 = xp.sum(dscores, axis=-2)
    # dL/dhidden = dscores @ W2.T
    dhidden = dscores @ _T(xp, params["W2"])
    # hidden = dropout * ReLU(X @ W1 + b1): dL/d(X @ W1 + b1) = dL/dhidden * dropout * [hidden > 0]
    # (a 0/1 mask multiplied in place is several times faster than where())
    if dropout is not None:
        dhidden *= dropout
    dhidden *= xp.astype(hidden > 0, dhidden.dtype)
    # dL/dW1 = X.T @ dL/d(X @ W1 + b1); dL/db1 = its sum over the rows
    dW1 = matmul(xp, _T(xp, X), dhidden)
    db1 = xp.sum(dhidden, axis=-2)
    return Params(W1=dW1, b1=db1, W2=dW2, b2=db2)


def softmax(xp: Namespace, scores: Array) -> Array:
    """``softmax(scores)[i, j] = exp(s_ij) / sum_k exp(s_ik)``, shifted by each row's maximum."""
    exp_scores = xp.exp(scores - xp.max(scores, axis=-1, keepdims=True))
    return exp_scores / xp.sum(exp_scores, axis=-1, keepdims=True)


def one_hot(xp: Namespace, y: Array, num_classes: int, dtype: ArrayDType) -> Array:
    """``one_hot(y)[i, j] = 1.0 if y[i] == j else 0.0``: shape (N,) to (N, C), by broadcasting."""
    classes = xp.arange(num_classes, dtype=y.dtype, device=device_of(y))
    return xp.astype(y[..., None] == classes, dtype)


def cross_entropy(
    xp: Namespace, params: Params, X: Array, T: Array, dropout: Array | None = None
) -> tuple[Array, Params]:
    """Softmax cross-entropy, without regularisation, and its gradients.

    Parameters
    ----------
    xp, params, X, dropout
        As for :func:`forward`.
    T : array, shape (N, C)
        One-hot targets, ``one_hot(y)``.

    Returns
    -------
    loss : array, shape ()
        ``mean_i(-log softmax(scores_i)[y_i])``.
    grads : dict
        The gradient of ``loss`` with respect to each parameter, same shapes.
    """
    N = _num_rows(xp, X)
    hidden, scores = forward(xp, params, X, dropout)
    # Softmax, shifted by the row maximum so exp cannot overflow.
    scores -= xp.max(scores, axis=-1, keepdims=True)
    exp_scores = xp.exp(scores)
    sum_exp = xp.sum(exp_scores, axis=-1, keepdims=True)
    # -log softmax(s_i)[y_i] = log(sum_j exp(s_ij)) - s_i[y_i];  sum_i s_i[y_i] = <scores, T>
    loss = (xp.sum(xp.log(sum_exp), axis=(-2, -1)) - _inner(xp, scores, T)) / N
    # dL/dscores = (softmax - one_hot(y)) / N, built in the exp_scores buffer
    dscores = exp_scores
    dscores /= sum_exp
    dscores -= T
    dscores /= N
    return loss, backward(xp, params, X, hidden, dscores, dropout)


def l2_penalty(xp: Namespace, params: Params, reg: float | Array) -> Array:
    """``0.5 * reg * (sum(W1**2) + sum(W2**2))``, as dot products: shape () or (K,)."""
    W1, W2 = params["W1"], params["W2"]
    return 0.5 * reg * (_inner(xp, W1, W1) + _inner(xp, W2, W2))


def softmax_loss(
    xp: Namespace, params: Params, X: Array, y: Array, reg: float | Array
) -> tuple[Array, Params]:
    """Softmax cross-entropy with L2 regularisation, and its gradients: the lab's loss.

    Parameters
    ----------
    xp, params, X
        As for :func:`forward`.
    y : array of int, shape (N,) or (K, N)
        Class labels in [0, C).
    reg : float, or array of shape (K,) for K stacked networks
        L2 regularisation strength.

    Returns
    -------
    loss : array, shape () or (K,)
        ``mean(-log softmax(scores)[y]) + 0.5 * reg * (sum(W1**2) + sum(W2**2))``.
    grads : dict
        The gradient of ``loss`` with respect to each parameter, same shapes.
    """
    T = one_hot(xp, y, params["W2"].shape[-1], X.dtype)
    loss, grads = cross_entropy(xp, params, X, T)
    per_matrix = reg if isinstance(reg, int | float) else xp.reshape(reg, (*reg.shape, 1, 1))
    grads["W1"] += per_matrix * params["W1"]  # d/dW of 0.5 * reg * sum(W**2) = reg * W
    grads["W2"] += per_matrix * params["W2"]
    return loss + l2_penalty(xp, params, reg), grads


def _T(xp: Namespace, x: Array) -> Array:
    """The transpose of a matrix, or of each of a stack (products broadcast over it)."""
    return xp.matrix_transpose(x) if x.ndim > 2 else x.T


def _rows(xp: Namespace, b: Array) -> Array:
    """A bias as a row to add to every row: (H,) as it is, (K, H) as (K, 1, H)."""
    return b if b.ndim == 1 else xp.expand_dims(b, axis=-2)


def _inner(xp: Namespace, a: Array, b: Array) -> Array:
    """``sum(a * b)``, as a dot product (no temporary array): shape (), or (K,) for stacks."""
    if a.ndim <= 2:
        return xp.reshape(a, (-1,)) @ xp.reshape(b, (-1,))
    return xp.vecdot(xp.reshape(a, (a.shape[0], -1)), xp.reshape(b, (b.shape[0], -1)))


def _num_rows(xp: Namespace, X: Array) -> Array | int:
    """N, the rows of ``X``: an int, or a 0-d array where it is known only at run time."""
    N = X.shape[-2]
    return N if isinstance(N, int) else xp.sum(xp.ones_like(X[..., 0]))
