"""The two-layer fully-connected network: forward pass, softmax loss, backprop, SGD.

The network computes::

    hidden = ReLU(X @ W1 + b1)          # (N, H)
    scores = hidden @ W2 + b2           # (N, C)
    loss   = mean_i -log softmax(scores_i)[y_i] + 0.5 * reg * (sum(W1**2) + sum(W2**2))

Every line below uses only the Array API namespace ``xp`` of the network's
backend, so the same code runs on NumPy, CuPy, torch and array-api-strict.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
from array_api_compat import device as device_of

from xpnet import _checks
from xpnet._interrupt import deferred_interrupt
from xpnet.backend import Backend, resolve_backend, to_numpy
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.model_file import read_model, write_model
from xpnet.optim import SGD

__all__ = [
    "INITS",
    "SCHEDULES",
    "TwoLayerNet",
    "cross_entropy",
    "forward",
    "l2_penalty",
    "onehot",
    "softmax_loss",
]

#: Weight initialisations: the lab's scaled Gaussian, and He's.
INITS = ("gaussian", "he")
#: Learning-rate schedules: the lab's decay once per epoch, and cosine annealing.
SCHEDULES = ("step", "cosine")
#: The weights the L2 penalty applies to (not the biases).
L2_WEIGHTS = ("W1", "W2")

Params = dict[str, Any]


def forward(xp: ModuleType, params: Params, X: Any) -> tuple[Any, Any]:
    """Compute the hidden activations and the class scores.

    Parameters
    ----------
    xp : module
        The Array API namespace of the arrays.
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    X : array, shape (N, D)

    Returns
    -------
    hidden : array, shape (N, H)
        ``ReLU(X @ W1 + b1)``.
    scores : array, shape (N, C)
        ``hidden @ W2 + b2``, the scores before the softmax.
    """
    pre_activation = X @ params["W1"]
    pre_activation += params["b1"]  # in place where arrays are mutable: no extra (N, H) array
    hidden = xp.maximum(pre_activation, 0.0)
    scores = hidden @ params["W2"]
    scores += params["b2"]
    return hidden, scores


def onehot(xp: ModuleType, y: Any, num_classes: int, dtype: Any) -> Any:
    """``onehot(y)[i, j] = 1.0 if y[i] == j else 0.0``: shape (N,) to (N, C), by broadcasting."""
    classes = xp.arange(num_classes, dtype=y.dtype, device=device_of(y))
    return xp.astype(y[:, None] == classes, dtype)


def cross_entropy(xp: ModuleType, params: Params, X: Any, T: Any) -> tuple[Any, Params]:
    """Softmax cross-entropy, without regularisation, and its gradients.

    Parameters
    ----------
    xp : module
        The Array API namespace of the arrays.
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    X : array, shape (N, D)
    T : array, shape (N, C)
        One-hot targets, ``onehot(y)``.

    Returns
    -------
    loss : array, shape ()
        ``mean_i(-log softmax(scores_i)[y_i])``.
    grads : dict
        The gradient of ``loss`` with respect to each parameter, same shapes.
    """
    N = X.shape[0]
    hidden, scores = forward(xp, params, X)

    # Softmax, shifted by the row maximum so exp cannot overflow.
    scores -= xp.max(scores, axis=1, keepdims=True)
    exp_scores = xp.exp(scores)
    sum_exp = xp.sum(exp_scores, axis=1, keepdims=True)
    # -log softmax(s_i)[y_i] = log(sum_j exp(s_ij)) - s_i[y_i]
    loss = (xp.sum(xp.log(sum_exp)) - xp.sum(scores * T)) / N

    # dL/dscores = (softmax - onehot(y)) / N
    dscores = (exp_scores / sum_exp - T) / N
    # scores = hidden @ W2 + b2
    dW2 = hidden.T @ dscores
    db2 = xp.sum(dscores, axis=0)
    dhidden = dscores @ params["W2"].T
    # hidden = ReLU(X @ W1 + b1): the gradient flows only where hidden > 0
    dhidden = xp.where(hidden > 0, dhidden, 0.0)
    dW1 = X.T @ dhidden
    db1 = xp.sum(dhidden, axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def l2_penalty(xp: ModuleType, params: Params, reg: float) -> Any:
    """``0.5 * reg * (sum(W1**2) + sum(W2**2))``, as dot products (no temporary arrays)."""
    squares = [
        xp.vecdot(xp.reshape(params[W], (-1,)), xp.reshape(params[W], (-1,))) for W in L2_WEIGHTS
    ]
    return 0.5 * reg * (squares[0] + squares[1])


def softmax_loss(xp: ModuleType, params: Params, X: Any, y: Any, reg: float) -> tuple[Any, Params]:
    """Softmax cross-entropy with L2 regularisation, and its gradients: the lab's loss.

    Parameters
    ----------
    xp : module
        The Array API namespace of the arrays.
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    X : array, shape (N, D)
    y : array of int, shape (N,)
        Class labels in [0, C).
    reg : float
        L2 regularisation strength.

    Returns
    -------
    loss : array, shape ()
        ``mean(-log softmax(scores)[y]) + 0.5 * reg * (sum(W1**2) + sum(W2**2))``.
    grads : dict
        The gradient of ``loss`` with respect to each parameter, same shapes.
    """
    T = onehot(xp, y, params["W2"].shape[1], X.dtype)
    loss, grads = cross_entropy(xp, params, X, T)
    for W in L2_WEIGHTS:
        grads[W] += reg * params[W]  # d/dW of 0.5 * reg * sum(W**2)
    return loss + l2_penalty(xp, params, reg), grads


class TwoLayerNet:
    """A two-layer fully-connected network with a ReLU and a softmax classifier.

    ``input -> affine -> ReLU -> affine -> softmax``, trained by minibatch SGD
    on the softmax cross-entropy loss with L2 regularisation of the weights.

    Parameters
    ----------
    input_size : int
        The dimension D of the inputs.
    hidden_size : int
        The number of hidden units H.
    output_size : int
        The number of classes C.
    std : float, default 1e-4
        Weights are initialised as ``std * randn``; biases as zeros.
    backend : str or module, default "numpy"
        ``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"cupy"`` or an
        Array API namespace.
    device : object, optional
        The backend's device, for example ``"cuda:1"`` (torch) or ``1`` (CuPy).
    dtype : {"float64", "float32"}, default "float64"
        The floating dtype of parameters and computation.
    seed : int, optional
        Seeds a private ``numpy.random.Generator`` used for initialisation and
        batch sampling. When None, NumPy's global legacy state is used
        (``np.random.randn``, ``np.random.choice``), as in the lab, so that
        ``np.random.seed`` reproduces its numbers.
    init : {"gaussian", "he"}, default "gaussian"
        ``"gaussian"``: weights ``std * randn``, the lab's. ``"he"``: weights
        ``randn * sqrt(2 / fan_in)`` (He et al., 2015), ``std`` unused.

    Attributes
    ----------
    params : dict of str to array
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), arrays of the
        backend on its device.

    Notes
    -----
    Methods accept NumPy arrays or arrays of the network's backend, and answer
    in kind: NumPy in, NumPy out; backend arrays in, backend arrays out.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        std: float = 1e-4,
        *,
        backend: str | ModuleType = "numpy",
        device: Any = None,
        dtype: str = "float64",
        seed: int | None = None,
        init: str = "gaussian",
    ) -> None:
        D = _checks.positive_int("input_size", input_size)
        H = _checks.positive_int("hidden_size", hidden_size)
        C = _checks.positive_int("output_size", output_size)
        std = _checks.real("std", std, low=0.0, low_open=False)
        self.backend: Backend = resolve_backend(backend, device)
        self.dtype = self.backend.dtype(dtype)
        self._rng: Any = np.random if seed is None else np.random.default_rng(seed)

        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        # "gaussian": W = std * randn, the lab's; "he": W = randn * sqrt(2 / fan_in).
        scale1, scale2 = (std, std) if init == "gaussian" else (np.sqrt(2 / D), np.sqrt(2 / H))
        randn = self._standard_normal
        host_params = {
            "W1": scale1 * randn((D, H)),
            "b1": np.zeros(H),
            "W2": scale2 * randn((H, C)),
            "b2": np.zeros(C),
        }
        self.params: Params = {
            name: self.backend.asarray(value, dtype=self.dtype)
            for name, value in host_params.items()
        }
        #: Settings and final figures of the last :meth:`train` call, saved with the model.
        self.training: dict[str, Any] | None = None
        #: Metadata read by :meth:`load`; empty for a new network.
        self.metadata: dict[str, Any] = {}

    @property
    def xp(self) -> ModuleType:
        """The Array API namespace of the network's arrays."""
        return self.backend.xp

    @property
    def device(self) -> Any:
        """The device holding the network's arrays."""
        return self.backend.device

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        D, H = self.params["W1"].shape
        return D, H, self.params["W2"].shape[1]

    def loss(self, X: Any, y: Any = None, reg: float = 0.0) -> Any:
        """Compute the class scores, or the loss and its gradients.

        Parameters
        ----------
        X : array, shape (N, D)
            Input rows.
        y : array of int, shape (N,), optional
            Class labels in [0, C).
        reg : float, default 0.0
            L2 regularisation strength.

        Returns
        -------
        scores : array, shape (N, C)
            When ``y`` is None.
        (loss, grads) : (float, dict)
            Otherwise: the loss, and its gradients with the keys and shapes
            of :attr:`params`.
        """
        D, _, C = self.sizes
        X_dev, from_host = _checks.features(self.backend, X, D, self.dtype)
        if y is None:
            _, scores = forward(self.xp, self.params, X_dev)
            return to_numpy(scores) if from_host else scores
        y_dev = _checks.labels(self.backend, y, X_dev.shape[0], C)
        reg = _checks.real("reg", reg, low=0.0, low_open=False)
        loss, grads = softmax_loss(self.xp, self.params, X_dev, y_dev, reg)
        if from_host:
            grads = {name: to_numpy(g) for name, g in grads.items()}
        return float(loss), grads

    def predict(self, X: Any) -> Any:
        """Predict class labels.

        Parameters
        ----------
        X : array, shape (N, D)

        Returns
        -------
        array of int, shape (N,)
            The index of the highest score of each row.
        """
        X_dev, from_host = _checks.features(self.backend, X, self.sizes[0], self.dtype)
        labels = self._predict(X_dev)
        return to_numpy(labels) if from_host else labels

    def train(
        self,
        X: Any,
        y: Any,
        X_val: Any,
        y_val: Any,
        learning_rate: float = 1e-3,
        learning_rate_decay: float = 0.95,
        reg: float = 5e-6,
        num_iters: int = 100,
        batch_size: int = 200,
        momentum: float = 0.0,
        verbose: bool = False,
        progress: Callable[[int, Any, float], None] | None = None,
        *,
        shuffle: bool = False,
        schedule: str = "step",
    ) -> dict[str, list[float]]:
        """Train by minibatch stochastic gradient descent.

        Each iteration samples ``batch_size`` rows with replacement, takes one SGD
        step (with momentum when ``momentum > 0``), and records the loss. Once per
        epoch, ``max(N // batch_size, 1)`` iterations, it records the accuracy on
        the current batch and on the validation set, then multiplies the learning
        rate by ``learning_rate_decay``.

        Parameters
        ----------
        X : array, shape (N, D)
            Training rows.
        y : array of int, shape (N,)
            Training labels in [0, C).
        X_val : array, shape (N_val, D)
            Validation rows.
        y_val : array of int, shape (N_val,)
            Validation labels.
        learning_rate : float, default 1e-3
        learning_rate_decay : float, default 0.95
            Factor applied to the learning rate after every epoch.
        reg : float, default 5e-6
            L2 regularisation strength.
        num_iters : int, default 100
            Number of SGD steps.
        batch_size : int, default 200
            Rows per step.
        momentum : float, default 0.0
            Momentum coefficient in [0, 1); plain SGD when 0.
        verbose : bool, default False
            Print the loss every 100 iterations.
        progress : callable, optional
            Called after every iteration as ``progress(iteration, loss, learning_rate)``
            with the loss as a 0-d array still on the device: reading it (``float``)
            waits for the device, so a progress display should do so only now and then.
        shuffle : bool, default False
            False: each batch is sampled with replacement, as in the lab. True: each
            epoch visits the rows of a fresh random permutation in batches.
        schedule : {"step", "cosine"}, default "step"
            ``"step"``: the learning rate is multiplied by ``learning_rate_decay``
            after every epoch, as in the lab. ``"cosine"``: it follows
            ``learning_rate * (1 + cos(pi * t / num_iters)) / 2`` over the iterations
            ``t``, and ``learning_rate_decay`` is not used.

        Returns
        -------
        dict
            ``loss_history`` (one float per iteration), ``train_acc_history`` and
            ``val_acc_history`` (one float per epoch).
        """
        xp = self.xp
        D, _, C = self.sizes
        learning_rate = _checks.real("learning_rate", learning_rate, low=0.0, low_open=True)
        learning_rate_decay = _checks.real(
            "learning_rate_decay", learning_rate_decay, low=0.0, high=1.0, low_open=True
        )
        reg = _checks.real("reg", reg, low=0.0, low_open=False)
        num_iters = _checks.positive_int("num_iters", num_iters)
        batch_size = _checks.positive_int("batch_size", batch_size)
        momentum = _checks.real("momentum", momentum, low=0.0, high=0.999, low_open=False)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        X, _ = _checks.features(self.backend, X, D, self.dtype)
        y = _checks.labels(self.backend, y, X.shape[0], C)
        X_val, _ = _checks.features(self.backend, X_val, D, self.dtype)
        y_val = _checks.labels(self.backend, y_val, X_val.shape[0], C)

        num_train = X.shape[0]
        iterations_per_epoch = max(num_train // batch_size, 1)
        # How often to look for a NaN or infinite loss: the one wait on the device.
        check_every = min(iterations_per_epoch, 100)
        optimizer = SGD(self.params, learning_rate, momentum, weight_decay=reg, decayed=L2_WEIGHTS)
        T = onehot(xp, y, C, self.dtype)  # every row's one-hot target, built once
        losses, train_accs, val_accs = [], [], []
        checkpoint, checked = self._copy_params(), 0

        batches = self._batches(num_train, batch_size, shuffle)

        with deferred_interrupt() as interrupted:
            for it, batch in zip(range(num_iters), batches, strict=False):
                if interrupted():
                    break
                if schedule == "cosine":
                    optimizer.learning_rate = (
                        learning_rate * (1 + math.cos(math.pi * it / num_iters)) / 2
                    )
                X_batch, T_batch = xp.take(X, batch, axis=0), xp.take(T, batch, axis=0)

                # The lab's loss; its L2 term's gradient is applied by the optimizer.
                loss, grads = cross_entropy(xp, self.params, X_batch, T_batch)
                loss = loss + l2_penalty(xp, self.params, reg)
                optimizer.step(grads)
                losses.append(loss)
                if verbose and it % 100 == 0:
                    print(f"iteration {it} / {num_iters}: loss {float(loss):f}")

                if (it + 1) % iterations_per_epoch == 0:
                    train_accs.append(self._accuracy(X_batch, xp.take(y, batch, axis=0)))
                    val_accs.append(self._accuracy(X_val, y_val))
                    if schedule == "step":
                        optimizer.learning_rate *= learning_rate_decay
                if progress is not None:
                    progress(it, loss, optimizer.learning_rate)
                if (it + 1) % check_every == 0:
                    if not self._all_finite(losses[checked:]):
                        self._diverged(
                            losses,
                            train_accs,
                            val_accs,
                            checkpoint,
                            checked,
                            optimizer.learning_rate,
                        )
                    checkpoint, checked = self._copy_params(), len(losses)

        # The iterations since the last check, whether the run finished or was stopped.
        if not self._all_finite(losses[checked:]):
            self._diverged(
                losses, train_accs, val_accs, checkpoint, checked, optimizer.learning_rate
            )
        history = self._history(losses, train_accs, val_accs)
        self.training = {
            "settings": {
                "learning_rate": learning_rate,
                "learning_rate_decay": learning_rate_decay,
                "reg": reg,
                "num_iters": num_iters,
                "batch_size": batch_size,
                "momentum": momentum,
                "shuffle": shuffle,
                "schedule": schedule,
                "num_train": num_train,
                "backend": self.backend.name,
            },
            "iterations": len(losses),
            "final_loss": history["loss_history"][-1] if losses else None,
            "final_val_acc": history["val_acc_history"][-1] if val_accs else None,
        }
        if len(losses) < num_iters:
            raise TrainingInterrupted(len(losses), history)
        return history

    def save(self, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> None:
        """Write the parameters and metadata to an ``.npz`` file, atomically.

        Parameters
        ----------
        path : path-like
            The file to write; replaced whole or left as it was.
        metadata : dict, optional
            JSON-serialisable extras (results, preprocessing) stored with the
            sizes, dtype, xpnet version and the settings of the last training run.
        """
        write_model(path, self.params, {"training": self.training, **(metadata or {})})

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str | ModuleType = "numpy",
        device: Any = None,
        dtype: str | None = None,
    ) -> TwoLayerNet:
        """Read a network saved by :meth:`save`, onto any backend and device.

        Parameters
        ----------
        path : path-like
        backend, device
            Where to put the parameters, as for :class:`TwoLayerNet`.
        dtype : {"float32", "float64"}, optional
            The dtype to compute in; the file's when None.

        Returns
        -------
        TwoLayerNet
            With :attr:`metadata` holding the file's metadata.

        Raises
        ------
        xpnet.errors.ModelFileError
            If the file is not a valid xpnet model (see :mod:`xpnet.model_file`).
        """
        params, metadata = read_model(path)
        D, H = params["W1"].shape
        net = cls(
            D,
            H,
            params["W2"].shape[1],
            std=0.0,
            backend=backend,
            device=device,
            dtype=dtype or metadata["dtype"],
            seed=0,
        )
        net.params = {name: net.backend.asarray(p, dtype=net.dtype) for name, p in params.items()}
        net.training = metadata.get("training")
        net.metadata = metadata
        return net

    def _batches(self, num_train: int, batch_size: int, shuffle: bool) -> Iterator[Any]:
        """Row indices on the device, one array per iteration, drawn an epoch at a time.

        Without ``shuffle``, rows are sampled with replacement, as the lab does; with
        it, each epoch takes consecutive slices of a fresh permutation. Either way
        one transfer to the device serves a whole epoch.
        """
        per_epoch = max(num_train // batch_size, 1)
        while True:
            if shuffle:
                order = self.backend.asarray(self._rng.permutation(num_train))
                epoch = [order[k * batch_size : (k + 1) * batch_size] for k in range(per_epoch)]
            else:
                drawn = self.backend.asarray(self._rng.choice(num_train, (per_epoch, batch_size)))
                epoch = [drawn[k, :] for k in range(per_epoch)]
            yield from epoch

    def _predict(self, X: Any) -> Any:
        _, scores = forward(self.xp, self.params, X)
        return self.xp.argmax(scores, axis=1)

    def _accuracy(self, X: Any, y: Any) -> Any:
        xp = self.xp
        return xp.mean(xp.astype(self._predict(X) == y, self.dtype))

    def _history(self, losses: list[Any], train_accs: list[Any], val_accs: list[Any]) -> dict:
        return {
            "loss_history": self._floats(losses),
            "train_acc_history": self._floats(train_accs),
            "val_acc_history": self._floats(val_accs),
        }

    def _copy_params(self) -> Params:
        return {name: self.xp.asarray(p, copy=True) for name, p in self.params.items()}

    def _all_finite(self, scalars: list[Any]) -> bool:
        """Whether the losses and the parameters are all finite: one wait on the device."""
        xp = self.xp
        checks = [xp.all(xp.isfinite(p)) for p in self.params.values()]
        if scalars:
            checks.append(xp.all(xp.isfinite(xp.stack(scalars))))
        return bool(xp.all(xp.stack(checks)))

    def _diverged(
        self,
        losses: list[Any],
        train_accs: list[Any],
        val_accs: list[Any],
        checkpoint: Params,
        checked: int,
        learning_rate: float,
    ) -> None:
        """Restore the last finite parameters and raise TrainingDivergedError."""
        recent = to_numpy(self.xp.stack(losses[checked:])) if losses[checked:] else np.zeros(0)
        bad = np.flatnonzero(~np.isfinite(recent))
        iteration = checked + (int(bad[0]) if bad.size else len(recent))
        for name, p in checkpoint.items():
            self.params[name] = p
        history = self._history(losses[:iteration], train_accs, val_accs)
        value = f"{recent[bad[0]]}" if bad.size else "finite, but the parameters overflowed"
        raise TrainingDivergedError(
            f"training diverged at iteration {iteration}: the loss became {value} with "
            f"learning rate {learning_rate:.3g}. The network keeps its parameters from "
            f"iteration {checked}, the last check with a finite loss. Lower the learning "
            "rate (or the momentum) and train again.",
            iteration,
            history,
        )

    def _floats(self, scalars: list[Any]) -> list[float]:
        """Turn device scalars into Python floats with one transfer."""
        if not scalars:
            return []
        return to_numpy(self.xp.stack(scalars)).astype(float).tolist()

    def _standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self._rng, np.random.Generator):
            return self._rng.standard_normal(shape)
        return self._rng.randn(*shape)
