"""The two-layer fully-connected network: forward pass, softmax loss, backprop, SGD.

The network computes::

    hidden = ReLU(X @ W1 + b1)          # (N, H)
    scores = hidden @ W2 + b2           # (N, C)
    loss   = mean_i -log softmax(scores_i)[y_i] + 0.5 * reg * (sum(W1**2) + sum(W2**2))

The math (:func:`forward`, :func:`cross_entropy`, :func:`l2_penalty`,
:func:`softmax_loss` and the training step :class:`TrainStep`) uses only the Array
API namespace ``xp`` of the network's backend, so the same lines run on NumPy, CuPy,
PyTorch, JAX and array-api-strict, eagerly or compiled. NumPy on the host draws the
initial weights and the batch indices, so that a seed gives the same network and
the same batches on every backend.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from xpnet import _checks
from xpnet._interrupt import deferred_interrupt
from xpnet.augment import Augmentation
from xpnet.backend import (
    Backend,
    Compile,
    device_of,
    resolve_backend,
    select_runner,
    to_numpy,
)
from xpnet.errors import TrainingInterrupted
from xpnet.metrics import accuracy
from xpnet.model_file import RESERVED_KEYS, read_model, write_model
from xpnet.optim import OPTIMIZERS, SGD, Adam, make_optimizer
from xpnet.preprocess import Preprocessing
from xpnet.training import (
    SCHEDULES,
    BatchSampler,
    EpochCallback,
    ProgressCallback,
    Rates,
    RunRecord,
    Schedule,
    chunks,
    learning_rates,
)

__all__ = [
    "INITS",
    "SCHEDULES",
    "TrainStep",
    "TwoLayerNet",
    "cross_entropy",
    "forward",
    "l2_penalty",
    "onehot",
    "softmax",
    "softmax_loss",
]

Init = Literal["gaussian", "he"]
Optimizer = Literal["sgd", "adam", "adamw"]
DType = Literal["float32", "float64"]
#: Weight initialisations: the lab's scaled Gaussian, and He's.
INITS: tuple[Init, ...] = ("gaussian", "he")
#: The weights the L2 penalty applies to (not the biases).
L2_WEIGHTS = ("W1", "W2")

Params = dict[str, Any]


def forward(xp: ModuleType, params: Params, X: Any, dropout: Any = None) -> tuple[Any, Any]:
    """Compute the hidden activations and the class scores.

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
    pre_activation = X @ params["W1"]
    pre_activation += params["b1"]  # in place where arrays are mutable: no extra (N, H) array
    hidden = xp.clip(pre_activation, min=0.0)  # ReLU; a Python bound needs no device constant
    if dropout is not None:
        hidden *= dropout
    scores = hidden @ params["W2"]
    scores += params["b2"]
    return hidden, scores


def onehot(xp: ModuleType, y: Any, num_classes: int, dtype: Any) -> Any:
    """``onehot(y)[i, j] = 1.0 if y[i] == j else 0.0``: shape (N,) to (N, C), by broadcasting."""
    classes = xp.arange(num_classes, dtype=y.dtype, device=device_of(y))
    return xp.astype(y[:, None] == classes, dtype)


def cross_entropy(
    xp: ModuleType, params: Params, X: Any, T: Any, dropout: Any = None
) -> tuple[Any, Params]:
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
    dropout : array, shape (N, H), optional
        The hidden layer's dropout mask, as for :func:`forward`.

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
    scores -= xp.max(scores, axis=1, keepdims=True)
    exp_scores = xp.exp(scores)
    sum_exp = xp.sum(exp_scores, axis=1, keepdims=True)
    # -log softmax(s_i)[y_i] = log(sum_j exp(s_ij)) - s_i[y_i];  sum_i s_i[y_i] = <scores, T>
    loss = (xp.sum(xp.log(sum_exp)) - _flat(xp, scores) @ _flat(xp, T)) / N

    # dL/dscores = (softmax - onehot(y)) / N, built in the exp_scores buffer
    dscores = exp_scores
    dscores /= sum_exp
    dscores -= T
    dscores /= N
    # scores = hidden @ W2 + b2: dW2 = hidden.T @ dscores, computed as its transpose
    # (dscores.T @ hidden).T, a product whose layout BLAS libraries (torch's above all)
    # run several times faster for a few classes
    dW2 = (dscores.T @ hidden).T
    db2 = xp.sum(dscores, axis=0)
    dhidden = dscores @ params["W2"].T
    # hidden = dropout * ReLU(X @ W1 + b1): times the dropout mask, and only where
    # hidden > 0 (a 0/1 mask multiplied in place is several times faster than where())
    if dropout is not None:
        dhidden *= dropout
    dhidden *= xp.astype(hidden > 0, dhidden.dtype)
    dW1 = X.T @ dhidden
    db1 = xp.sum(dhidden, axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def softmax(xp: ModuleType, scores: Any) -> Any:
    """``softmax(scores)[i, j] = exp(s_ij) / sum_k exp(s_ik)``, shifted by each row's maximum."""
    exp_scores = xp.exp(scores - xp.max(scores, axis=1, keepdims=True))
    return exp_scores / xp.sum(exp_scores, axis=1, keepdims=True)


def l2_penalty(xp: ModuleType, params: Params, reg: float) -> Any:
    """``0.5 * reg * (sum(W1**2) + sum(W2**2))``, as dot products (no temporary arrays)."""
    W1, W2 = (_flat(xp, params[W]) for W in L2_WEIGHTS)
    return 0.5 * reg * (W1 @ W1 + W2 @ W2)


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


@dataclass(frozen=True)
class TrainStep:
    """One step of minibatch training: the lab's loss on a batch, then an optimiser update.

    Runners call it eagerly, trace it (``jax.jit``) or capture it (CUDA graphs); it
    is the one copy of the step's math. Frozen, so a compiled runner can key its
    cache on it.

    Attributes
    ----------
    xp : module
        The Array API namespace.
    optimizer : SGD, Adam or AdamW
        Applies the gradients and the L2 term (or weight decay).
    reg : float
        L2 regularisation strength, for the loss's penalty term.
    dropout : float
        The rate of inverted dropout on the hidden layer; 0 for none.
    augment : Augmentation or None
        Random distortions of each batch's images.
    """

    xp: ModuleType
    optimizer: SGD | Adam
    reg: float
    dropout: float = 0.0
    augment: Augmentation | None = None

    def draw(self, streams: dict[str, Any], count: int, batch: int, hidden: int) -> dict[str, Any]:
        """The randomness of ``count`` steps beyond their batches, as NumPy arrays.

        Each kind comes from its own stream, so the draws do not depend on how many
        steps are drawn at once (the eager loop draws one, compiled paths a chunk).
        """
        drawn: dict[str, Any] = {}
        if self.dropout:
            drawn["keep"] = streams["keep"].random((count, batch, hidden)) >= self.dropout
        if self.augment is not None:
            for name, values in self.augment.draw(streams["augment"], count, batch).items():
                drawn[name] = values
        return drawn

    def __call__(
        self, state: dict[str, Any], data: dict[str, Any], inputs: dict[str, Any], lr: Any
    ) -> Any:
        """Take one step on one batch; update ``state``; return the loss.

        Parameters
        ----------
        state : dict
            ``params`` (the network's parameters) and ``optimizer`` (its state),
            updated in place (by item assignment where arrays are immutable).
        data : dict
            ``X``, all training rows (N, D); ``T``, their one-hot targets (N, C);
            ``blank`` (D,), the row of a blank image (what augmentation adds before
            distorting and takes off after); and the augmentation's constants.
        inputs : dict
            ``batch`` (B,), the rows of this step; ``keep`` (B, H), the units dropout
            keeps; ``affine`` and ``field``, the augmentation's randomness.
        lr : float or 0-d array
            The learning rate.

        Returns
        -------
        array, shape ()
            The lab's loss on the batch, before the update.
        """
        xp, params = self.xp, state["params"]
        batch = inputs["batch"]
        X_batch = xp.take(data["X"], batch, axis=0)
        T_batch = xp.take(data["T"], batch, axis=0)
        if self.augment is not None:
            images = X_batch - data["blank"]
            X_batch = self.augment.apply(xp, images, inputs, data) + data["blank"]
        mask = None
        if self.dropout:
            mask = xp.astype(inputs["keep"], X_batch.dtype) * (1 / (1 - self.dropout))
        loss, grads = cross_entropy(xp, params, X_batch, T_batch, mask)
        loss = loss + l2_penalty(xp, params, self.reg)  # the L2 gradient is the optimizer's
        self.optimizer.step(params, grads, state["optimizer"], lr)
        return loss


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
    backend : str, module or Backend, default "numpy"
        ``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"cupy"``, ``"jax"``, an
        Array API namespace, or a :class:`xpnet.Backend`.
    device : object, optional
        The backend's device, for example ``"cuda:1"`` (torch), ``1`` (CuPy) or
        ``"gpu:0"`` (JAX).
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
    training : dict or None
        Settings and final figures of the last :meth:`train` call, saved with the model.
    metadata : dict
        Metadata read by :meth:`load`; empty for a new network.
    preprocessing : Preprocessing or None
        How raw images become this network's rows, where known: set by
        :func:`xpnet.pipeline.run`, saved with the model and read back by :meth:`load`,
        so that ``net.predict(net.preprocessing(images))`` needs nothing else.

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
        backend: str | ModuleType | Backend = "numpy",
        device: Any = None,
        dtype: DType = "float64",
        seed: int | None = None,
        init: Init = "gaussian",
    ) -> None:
        D = _checks.positive_int("input_size", input_size)
        H = _checks.positive_int("hidden_size", hidden_size)
        C = _checks.positive_int("output_size", output_size)
        std = _checks.real("std", std, low=0.0, low_open=False)
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self._setup(backend, device, dtype, seed)
        # The weights, drawn as float64 on the host, then on the device.
        _checks.fits_in_memory(
            self.backend, (D + C) * H, "float64", f"a {D}-{H}-{C} network (hidden_size={H})"
        )

        # "gaussian": W = std * randn, the lab's; "he": W = randn * sqrt(2 / fan_in).
        scale1, scale2 = (std, std) if init == "gaussian" else (np.sqrt(2 / D), np.sqrt(2 / H))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            weights = {
                "W1": scale1 * self._standard_normal((D, H)),
                "W2": scale2 * self._standard_normal((H, C)),
            }
        _checks.finite_weights(weights, dtype, std)
        host_params = {
            "W1": weights["W1"],
            "b1": np.zeros(H),
            "W2": weights["W2"],
            "b2": np.zeros(C),
        }
        self.params: Params = {
            name: self.backend.asarray(value, dtype=self.dtype)
            for name, value in host_params.items()
        }

    def _setup(self, backend: Any, device: Any, dtype: Any, seed: int | None) -> None:
        """Resolve the backend, dtype and random source; no parameters yet."""
        if seed is not None:
            seed = _checks.seed(seed)
        self.backend: Backend = resolve_backend(backend, device)
        self.dtype = self.backend.dtype(dtype)
        self._rng: Any = np.random if seed is None else np.random.default_rng(seed)
        self.training: dict[str, Any] | None = None
        self.metadata: dict[str, Any] = {}
        self.preprocessing: Preprocessing | None = None

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

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities: the softmax of the scores.

        Parameters
        ----------
        X : array, shape (N, D)

        Returns
        -------
        array, shape (N, C)
            Each row sums to one; NumPy in, NumPy out; backend arrays in, backend arrays out.
        """
        X_dev, from_host = _checks.features(self.backend, X, self.sizes[0], self.dtype)
        probabilities = softmax(self.xp, forward(self.xp, self.params, X_dev)[1])
        return to_numpy(probabilities) if from_host else probabilities

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
        progress: ProgressCallback | None = None,
        *,
        shuffle: bool = False,
        schedule: Schedule = "step",
        compile: Compile = "auto",
        on_epoch: EpochCallback | None = None,
        optimizer: Optimizer = "sgd",
        dropout: float = 0.0,
        augment: Augmentation | None = None,
    ) -> dict[str, list[float]]:
        """Train by minibatch stochastic gradient descent.

        Each iteration takes a batch of ``batch_size`` rows, one SGD step (with
        momentum when ``momentum > 0``) on the lab's loss, and records the loss. An
        epoch is ``max(N // batch_size, 1)`` iterations; after each, the accuracy on
        its last batch and on the validation set is recorded, and the ``"step"``
        schedule multiplies the learning rate by ``learning_rate_decay``.

        Parameters
        ----------
        X : array, shape (N, D)
            Training rows.
        y : array of int, shape (N,)
            Training labels in [0, C).
        X_val : array, shape (N_val, D), or None
            Validation rows; None (with ``y_val``) records no validation accuracy.
        y_val : array of int, shape (N_val,), or None
            Validation labels.
        learning_rate : float, default 1e-3
        learning_rate_decay : float, default 0.95
            Factor in (0, 1] applied to the learning rate after every epoch.
        reg : float, default 5e-6
            L2 regularisation strength.
        num_iters : int, default 100
            Number of SGD steps.
        batch_size : int, default 200
            Rows per step.
        momentum : float, default 0.0
            Momentum coefficient of SGD, in [0, 0.999]; plain SGD when 0. Adam and AdamW
            keep their own moments and take none.
        verbose : bool, default False
            Print the loss every 100 iterations.
        progress : callable, optional
            ``progress(iteration, loss, learning_rate)``, called after every chunk of
            steps (one step on the eager path, up to 100 on a compiled one) with the
            chunk's last iteration, its loss as a 0-d array still on the device, and
            its learning rate. Reading the loss (``float``) waits for the device, so
            a progress display should do so only now and then.
        shuffle : bool, default False
            False: each batch is sampled with replacement, as in the lab. True: each
            epoch visits the rows of a fresh random permutation in batches.
        schedule : {"step", "cosine"}, default "step"
            ``"step"``: the learning rate is multiplied by ``learning_rate_decay``
            after every epoch, as in the lab. ``"cosine"``: it follows
            ``learning_rate * (1 + cos(pi * t / num_iters)) / 2`` over the iterations
            ``t``, and ``learning_rate_decay`` is not used.
        compile : {"auto", True, False}, default "auto"
            How the steps run. ``"auto"``: the fastest correct path for the backend
            and device (``jax.jit`` with ``lax.scan`` on JAX, CUDA graphs for torch on
            CUDA, the eager loop elsewhere). False: the eager loop, one step at a
            time. True: a compiled path, or ValueError where there is none.
            :attr:`training` records which path ran.
        on_epoch : callable, optional
            ``on_epoch(epoch, mean_loss, val_acc)``, called after every epoch with its
            number (from 1), its mean loss and the validation accuracy (None without a
            validation set) as Python floats: one wait on the device per epoch. If it
            returns True, training stops there and returns its history; the network
            keeps the parameters of that epoch's end.
        optimizer : {"sgd", "adam", "adamw"}, default "sgd"
            SGD (with ``momentum``), Adam, or AdamW (``reg`` is then its decoupled
            weight decay; with SGD and Adam, ``reg`` is the L2 term's strength).
        dropout : float, default 0.0
            The rate of inverted dropout on the hidden layer, in [0, 1); none at
            prediction.
        augment : Augmentation, optional
            Random distortions of each batch's images (:mod:`xpnet.augment`); the rows
            are taken as the images of :attr:`preprocessing` (raw pixels without one).

        Returns
        -------
        dict
            ``loss_history`` (one float per iteration), ``train_acc_history`` and
            ``val_acc_history`` (one float per epoch).

        Raises
        ------
        ValueError
            For bad data or settings, before any parameter changes.
        xpnet.errors.TrainingDivergedError
            If the loss or the parameters become NaN or infinite; the network keeps
            its parameters from the last check with finite values.
        xpnet.errors.TrainingInterrupted
            On Ctrl-C, after the current step (eager) or chunk (compiled); the
            network holds the parameters after the last whole step or chunk.
        """
        xp = self.xp
        D, H, C = self.sizes
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
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if optimizer != "sgd" and momentum:
            raise ValueError(
                f"momentum={momentum} is SGD's; {optimizer} keeps its own moments: "
                "pass momentum=0 (--momentum 0)"
            )
        dropout = _checks.real("dropout", dropout, low=0.0, high=0.95, low_open=False)
        if augment is not None and not isinstance(augment, Augmentation):
            raise ValueError(f"augment must be an xpnet.augment.Augmentation, got {augment!r}")
        X, _ = _checks.features(self.backend, X, D, self.dtype)
        y = _checks.labels(self.backend, y, X.shape[0], C)
        if progress is not None and not callable(progress):
            raise ValueError(f"progress must be a callable or None, got {progress!r}")
        if on_epoch is not None and not callable(on_epoch):
            raise ValueError(f"on_epoch must be a callable or None, got {on_epoch!r}")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if X_val is not None:
            X_val, _ = _checks.features(self.backend, X_val, D, self.dtype, name="X_val")
            y_val = _checks.labels(self.backend, y_val, X_val.shape[0], C, name="y_val")
        # A step's batch, activations and gradients: (B, D + 2C + 3H) values at most.
        _checks.fits_in_memory(
            self.backend, batch_size * (D + 2 * C + 3 * self.sizes[1]), self.dtype,
            f"batch_size={batch_size}",
        )  # fmt: skip

        if augment is not None and augment.image_shape[0] * augment.image_shape[1] != D:
            raise ValueError(f"augment's images of {augment.image_shape} are not rows of {D}")
        update = make_optimizer(
            optimizer, momentum=momentum, weight_decay=reg, decayed=frozenset(L2_WEIGHTS)
        )
        step = TrainStep(xp, update, reg if optimizer != "adamw" else 0.0, dropout, augment)
        runner = select_runner(self.backend, step, compile)
        sampler = BatchSampler(self.backend, self._rng, X.shape[0], batch_size, shuffle)
        streams = self._noise_streams() if dropout or augment is not None else {}
        per_epoch = sampler.per_epoch
        state = {"params": self.params, "optimizer": step.optimizer.init(self.params)}
        data = {
            "X": X,
            "T": onehot(xp, y, C, self.dtype),  # every row's one-hot target, built once
            "blank": self._blank_row(D),
            **(augment.constants(xp, self.dtype, self.device) if augment is not None else {}),
        }
        record = RunRecord(xp, self.params, check_every=min(per_epoch, 100))
        callbacks = [c for c in (progress, _LossPrinter(num_iters) if verbose else None) if c]

        stopped = False  # by on_epoch
        # NaN and infinity are the run's to detect (RunRecord.check), not NumPy's to warn of.
        with deferred_interrupt() as interrupted, np.errstate(all="ignore"):
            while record.iterations < num_iters and not (stopped or interrupted()):
                first = record.iterations
                batches = sampler.epoch()
                length = min(per_epoch, num_iters - first)
                host_rates = learning_rates(
                    schedule, learning_rate, learning_rate_decay, num_iters, per_epoch,
                    first, first + length,
                )  # fmt: skip
                rates = Rates(host_rates, self.backend.asarray(host_rates, dtype=self.dtype))
                for chunk in chunks(length, first, runner.max_chunk, 100 if verbose else None):
                    if interrupted():
                        break
                    inputs = {"batch": batches[chunk, :]}
                    drawn = step.draw(streams, chunk.stop - chunk.start, batches.shape[1], H)
                    inputs.update({k: self.backend.asarray(v) for k, v in drawn.items()})
                    state, losses = runner(state, data, inputs, rates[chunk])
                    self.params = state["params"]
                    record.add_losses(losses)
                    rate = float(host_rates[chunk.stop - 1])
                    epoch_end = record.iterations % per_epoch == 0  # chunks end there
                    if epoch_end:
                        last = batches[chunk.stop - 1, :]
                        record.add_accuracies(
                            self._accuracy(xp.take(X, last, axis=0), xp.take(y, last, axis=0)),
                            None if X_val is None else self._accuracy(X_val, y_val),
                        )
                    for callback in callbacks:
                        callback(record.iterations - 1, losses[-1], rate)
                    if record.check_due:
                        self._check(record, rate)
                    if epoch_end and on_epoch is not None:
                        stopped = bool(on_epoch(record.iterations // per_epoch,
                                                *record.epoch_summary(per_epoch)))  # fmt: skip
                        if stopped:
                            break
        if record.iterations > record.checked:
            self._check(record, float(host_rates[-1]))

        history = record.history()
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
                "optimizer": optimizer,
                "dropout": dropout,
                "augment": None if augment is None else dataclasses.asdict(augment),
                "num_train": int(X.shape[0]),
                "backend": self.backend.name,
            },
            "path": runner.name,
            "iterations": record.iterations,
            "final_loss": history["loss_history"][-1] if history["loss_history"] else None,
            "final_val_acc": history["val_acc_history"][-1] if history["val_acc_history"] else None,
        }
        if record.iterations < num_iters and not stopped:
            raise TrainingInterrupted(record.iterations, history)
        return history

    def save(self, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> None:
        """Write the parameters, preprocessing and metadata to an ``.npz`` file, atomically.

        Parameters
        ----------
        path : path-like
            The file to write; replaced whole (keeping its permissions) or left as it was.
        metadata : dict, optional
            JSON-serialisable extras (results, dataset) stored with the sizes, dtype,
            xpnet version, :attr:`preprocessing` and the settings of the last training run.

        Raises
        ------
        ValueError
            If ``metadata`` sets a key xpnet writes itself (``dtype``, ``sizes``,
            ``format``, ``training``, ...) or is not JSON-serialisable; nothing is written.
        """
        metadata = dict(metadata or {})
        reserved = sorted(set(metadata) & {*RESERVED_KEYS, "training"})
        if reserved:
            raise ValueError(
                f"metadata may not set {reserved}: xpnet writes these keys itself; rename them"
            )
        extras = None
        if self.preprocessing is not None:
            metadata["preprocessing"] = self.preprocessing.metadata()
            extras = {"preprocessing_mean": self.preprocessing.mean}
        write_model(path, self.params, {"training": self.training, **metadata}, extras)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str | ModuleType | Backend = "numpy",
        device: Any = None,
        dtype: DType | None = None,
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
            With :attr:`metadata` holding the file's metadata, and :attr:`preprocessing`
            the preprocessing saved with it (None for files written before xpnet saved it).

        Raises
        ------
        xpnet.errors.ModelFileError
            If the file is not a valid xpnet model (see :mod:`xpnet.model_file`).
        """
        params, metadata, extras = read_model(path)
        net = cls.__new__(cls)
        net._setup(backend, device, dtype or metadata["dtype"], seed=0)
        net.params = {name: net.backend.asarray(p, dtype=net.dtype) for name, p in params.items()}
        net.training = metadata.get("training")
        net.metadata = metadata
        described = metadata.get("preprocessing")
        if isinstance(described, dict):
            mean = extras["preprocessing_mean"]
            net.preprocessing = Preprocessing(described["name"], described["scale"], mean)
        return net

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without modules: NumPy's global random state and the namespace are
        recorded by name and found again on unpickling (see :class:`xpnet.Backend`)."""
        state = dict(self.__dict__)
        if state["_rng"] is np.random:
            state["_rng"] = "numpy.random"
        state["dtype"] = _dtype_name(self.dtype)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_rng"], str):
            state["_rng"] = np.random
        self.__dict__.update(state)
        self.dtype = self.backend.dtype(state["dtype"])

    def _predict(self, X: Any) -> Any:
        _, scores = forward(self.xp, self.params, X)
        return self.xp.argmax(scores, axis=1)

    def _accuracy(self, X: Any, y: Any) -> Any:
        """The accuracy on device rows ``X``, as a 0-d array on the device (no wait)."""
        return accuracy(y, self._predict(X))

    def _check(self, record: RunRecord, learning_rate: float) -> None:
        """Check the run for divergence; on it, restore the checkpoint and raise."""
        if not record.check(self.params):
            self.params = record.checkpoint
            raise record.divergence(learning_rate)

    def _noise_streams(self) -> dict[str, np.random.Generator]:
        """Independent random streams for dropout and augmentation, from the net's source."""
        if isinstance(self._rng, np.random.Generator):
            keep, augment = self._rng.spawn(2)
        else:  # NumPy's global state: seed two generators from it
            keep, augment = (np.random.default_rng(self._rng.randint(2**31)) for _ in range(2))
        return {"keep": keep, "augment": augment}

    def _blank_row(self, D: int) -> Any:
        """The row of a blank image: what the preprocessing makes of zeros (zeros without one)."""
        if self.preprocessing is None:
            return self.backend.asarray(np.zeros(D), dtype=self.dtype)
        blank = self.preprocessing(np.zeros((1, D), dtype=np.float32))[0]
        return self.backend.asarray(blank, dtype=self.dtype)

    def _standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self._rng, np.random.Generator):
            return self._rng.standard_normal(shape)
        return self._rng.randn(*shape)


class _LossPrinter:
    """``verbose=True``: print the loss every 100 iterations, as the lab does."""

    def __init__(self, num_iters: int):
        self.num_iters = num_iters

    def __call__(self, iteration: int, loss: Any, learning_rate: float) -> None:
        if iteration % 100 == 0:
            print(f"iteration {iteration} / {self.num_iters}: loss {float(loss):f}")


def _dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"``, whichever library's dtype this is."""
    return "float32" if "float32" in str(dtype) else "float64"


def _flat(xp: ModuleType, x: Any) -> Any:
    """``x`` as a vector, for dot products: ``_flat(a) @ _flat(b) = sum(a * b)``."""
    return xp.reshape(x, (-1,))


def _num_rows(xp: ModuleType, X: Any) -> Any:
    """N, the rows of ``X``: an int, or a 0-d array of X's dtype where the batch size is
    unknown until run time (a traced graph's placeholder, a Dask array of unknown chunks)."""
    N = X.shape[0]
    if isinstance(N, int):
        return N
    return xp.sum(xp.ones_like(X[:, 0]))
