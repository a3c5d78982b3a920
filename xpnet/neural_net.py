"""The two-layer fully-connected network: forward pass, softmax loss, backprop, SGD.

The network computes::

    hidden = ReLU(X @ W1 + b1)          # (N, H)
    scores = hidden @ W2 + b2           # (N, C)
    loss   = mean_i -log softmax(scores_i)[y_i] + 0.5 * reg * (sum(W1**2) + sum(W2**2))

The math (:func:`forward`, :func:`cross_entropy`, :func:`l2_penalty`,
:func:`softmax_loss` and the training step :class:`TrainStep`) uses only the Array
API namespace ``xp`` of the network's backend, so the same lines run on NumPy, CuPy,
PyTorch, JAX and array-api-strict, eagerly or compiled. NumPy on the host draws the
initial weights, so that a seed gives the same network on every backend; the
randomness of training (batch rows, dropout masks, distortions) is drawn on the
device by :mod:`xpnet.random`, keyed by the run's seed and counted by the step, so
that it too is the same on every backend, and a compiled step draws its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from xpnet import _checks
from xpnet import random as xr
from xpnet._deprecation import warn_renamed
from xpnet._typing import (
    INITS,
    Array,
    DType,
    Init,
    Namespace,
    OptimizerName,
    Params,
    Schedule,
    map_params,
    params_from,
)
from xpnet.augment import Augmentation
from xpnet.backend import (
    Backend,
    Compile,
    device_of,
    resolve_backend,
    to_numpy,
)
from xpnet.functional import cross_entropy, forward, l2_penalty, softmax, softmax_loss
from xpnet.model_file import RESERVED_KEYS, read_model, write_model
from xpnet.optim import SGD, Adam
from xpnet.preprocess import Preprocessing

if TYPE_CHECKING:
    from xpnet.training import EpochCallback, ProgressCallback

__all__ = ["INITS", "TrainStep", "TwoLayerNet"]

#: The random streams of a training run, by name: stream ``i`` has the key
#: ``xpnet.random.stream_key(seed, i)``, and a step's draws are counted by the step.
STREAMS = ("batch", "dropout", "affine", "elastic")


def stream_keys(xp: Namespace, seed: int, device: Any) -> dict[str, Array]:
    """The keys of a run's random streams (:data:`STREAMS`), made on ``device``.

    Returns
    -------
    dict
        ``key_batch``, ``key_dropout``, ``key_affine``, ``key_elastic``: arrays of
        shape (2,), int32, as :class:`TrainStep` reads them from its ``data``.
    """
    return {
        f"key_{name}": xr.stream_key(seed, stream, xp=xp, device=device)
        for stream, name in enumerate(STREAMS)
    }


@dataclass(frozen=True)
class TrainStep:
    """One step of minibatch training: the lab's loss on a batch, then an optimiser update.

    Runners call it eagerly, trace it (``jax.jit``) or capture it (CUDA graphs); it
    is the one copy of the step's math. Frozen, so a compiled runner can key its
    cache on it. Its randomness (dropout masks, distortions) is drawn on the device,
    from the run's stream keys and the step's counter, by :meth:`draw`: inside the
    step, where a runner passes only the batch's rows and the step number (compiled
    runners), or ahead, for several steps in one call, and passed in with them (the
    eager loop: one call of the generator costs a fixed few hundred microseconds on
    NumPy however few numbers it makes). A step's numbers are the same either way.

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

    xp: Namespace
    optimizer: SGD | Adam
    reg: float
    dropout: float = 0.0
    augment: Augmentation | None = None

    @property
    def draw_names(self) -> tuple[str, ...]:
        """The names of the arrays :meth:`draw` makes: ``affine`` and ``field`` (the
        augmentation's, see :meth:`xpnet.augment.Augmentation.noise`), ``keep``
        (dropout's); none for a step without randomness."""
        names: tuple[str, ...] = ()
        if self.augment is not None:
            names += ("affine", "field") if self.augment.elastic else ("affine",)
        return (*names, "keep") if self.dropout else names

    def draw(
        self, data: dict[str, Array], step: Array, batch_size: int, hidden_size: int
    ) -> dict[str, Array]:
        """The random numbers of one step, or of several at once.

        Parameters
        ----------
        data : dict
            The run's data, with its stream keys (:func:`stream_keys`).
        step : int32 array, shape S
            The steps' numbers: ``()`` for one step, ``(K,)`` for ``K``.
        batch_size, hidden_size : int
            B and H.

        Returns
        -------
        dict
            :attr:`draw_names` to arrays of shape S + (...): ``affine`` (B, 5) and
            ``field`` (B, 2, r, r'), float32; ``keep`` (B, H), bool, true with
            probability ``1 - dropout``. Row ``k`` of a draw of ``(K,)`` steps is
            the draw of step ``step[k]`` alone, bit for bit.
        """
        xp, device = self.xp, device_of(data["X"])
        draws: dict[str, Array] = {}
        if self.augment is not None:
            keys = (data["key_affine"], data["key_elastic"])
            draws.update(self.augment.noise(xp, keys, step, batch_size, device))
        if self.dropout:
            draws["keep"] = xr.bernoulli(data["key_dropout"], step, (batch_size, hidden_size),
                                         1 - self.dropout, xp=xp, device=device)  # fmt: skip
        return draws

    def __call__(
        self, state: dict[str, Any], data: dict[str, Array], inputs: dict[str, Array],
        lr: Array | float,
    ) -> Array:  # fmt: skip
        """Take one step on one batch; update ``state``; return the loss.

        Parameters
        ----------
        state : dict
            ``params`` (the network's parameters) and ``optimizer`` (its state),
            updated in place (by item assignment where arrays are immutable).
        data : dict
            ``X``, all training rows (N, D); ``T``, their one-hot targets (N, C);
            ``blank`` (D,), the row of a blank image (what augmentation adds before
            distorting and takes off after); the run's stream keys
            (:func:`stream_keys`); and the augmentation's constants.
        inputs : dict
            ``batch`` (B,), the rows of this step; ``step``, a 0-d int32 array: the
            step's number in the run, the counter of its random draws; and, where
            they were drawn ahead, the step's :meth:`draw` arrays (all of
            :attr:`draw_names`), else the step draws them.
        lr : float or 0-d array
            The learning rate.

        Returns
        -------
        array, shape ()
            The lab's loss on the batch, before the update.
        """
        xp, params = self.xp, state["params"]
        batch, step = inputs["batch"], inputs["step"]
        X_batch = xp.take(data["X"], batch, axis=0)
        T_batch = xp.take(data["T"], batch, axis=0)
        names = self.draw_names
        if all(name in inputs for name in names):
            draws = {name: inputs[name] for name in names}
        else:
            draws = self.draw(data, step, X_batch.shape[0], params["W1"].shape[1])
        if self.augment is not None:
            images = X_batch - data["blank"]
            X_batch = self.augment.apply(xp, images, draws, data) + data["blank"]
        mask = None
        if self.dropout:
            mask = xp.astype(draws["keep"], X_batch.dtype) * (1 / (1 - self.dropout))
        loss, grads = cross_entropy(xp, params, X_batch, T_batch, mask)
        loss = loss + l2_penalty(xp, params, self.reg)  # the L2 gradient is the optimizer's
        self.optimizer.step(xp, params, grads, state["optimizer"], lr)
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
        Seeds a private ``numpy.random.Generator`` that draws the initial weights
        and, at the start of each ``train``, the run's seed; the run's batch rows,
        dropout masks and distortions are then drawn on the device
        (:mod:`xpnet.random`), the same numbers on every backend. When None,
        NumPy's global legacy state is used (``np.random.randn``, and the batch
        rows of ``np.random.choice``, drawn before the first step), as in the lab,
        so that ``np.random.seed`` reproduces its numbers.
    init : {"gaussian", "he"}, default "gaussian"
        ``"gaussian"``: weights ``std * randn``, the lab's. ``"he"``: weights
        ``randn * sqrt(2 / fan_in)`` (He et al., 2015), ``std`` unused.

    Attributes
    ----------
    params : dict of str to array
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), arrays of the
        backend on its device.
    last_training : dict or None
        What the last :meth:`train` call did, saved with the model: its settings
        (``"settings"``), the path that ran (``"path"``), ``"iterations"`` and the final
        figures. Its old name, ``training``, works with an
        :class:`~xpnet.errors.XpnetDeprecationWarning` until xpnet 0.2, and may then
        become a flag, as PyTorch's ``Module.training`` is.
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
        self._setup(backend, device, dtype, seed)
        checked = _checks.network(input_size, hidden_size, output_size, init, std, seed,
                                  _dtype_name(self.dtype))  # fmt: skip
        D, H, C = checked["input_size"], checked["hidden_size"], checked["output_size"]
        self.init: Init = checked["init"]
        self.std: float = checked["std"]
        _checks.network_fits(self.backend, D, H, C)
        # "gaussian": W = std * randn, the lab's; "he": W = randn * sqrt(2 / fan_in).
        gaussian = self.init == "gaussian"
        scale1, scale2 = (self.std, self.std) if gaussian else (np.sqrt(2 / D), np.sqrt(2 / H))
        host = Params(
            W1=scale1 * self._standard_normal((D, H)),
            b1=np.zeros(H),
            W2=scale2 * self._standard_normal((H, C)),
            b2=np.zeros(C),
        )
        self.params: Params = map_params(lambda p: self.backend.asarray(p, dtype=self.dtype), host)

    def _setup(
        self, backend: str | ModuleType | Backend, device: Any, dtype: Any, seed: Any
    ) -> None:
        """Resolve the backend, dtype and random source; no parameters yet."""
        #: The seed of the random source (None: NumPy's global state).
        self.seed: int | None = None if seed is None else _checks.seed(seed)
        self.backend: Backend = resolve_backend(backend, device)
        if not isinstance(dtype, str):
            raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = self.backend.dtype(dtype)
        self._rng: Any = np.random if self.seed is None else np.random.default_rng(self.seed)
        self.last_training: dict[str, Any] | None = None
        self.metadata: dict[str, Any] = {}
        self.preprocessing: Preprocessing | None = None

    @property
    def xp(self) -> Namespace:
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

    def loss(self, X: Array, y: Array | None = None, reg: float = 0.0) -> Any:
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
            grads = map_params(to_numpy, grads)
        return float(loss), grads

    def predict(self, X: Array) -> Array:
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

    def predict_proba(self, X: Array) -> Array:
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
        X: Array,
        y: Array,
        X_val: Array | None,
        y_val: Array | None,
        learning_rate: float = 1e-3,
        learning_rate_decay: float = 0.95,
        reg: float = 5e-6,
        num_iters: int | None = None,
        batch_size: int = 200,
        momentum: float = 0.0,
        verbose: bool = False,
        progress: ProgressCallback | None = None,
        *,
        shuffle: bool = False,
        schedule: Schedule = "step",
        compile: Compile = "auto",
        on_epoch: EpochCallback | None = None,
        optimizer: OptimizerName = "sgd",
        dropout: float = 0.0,
        augment: Augmentation | None = None,
        weight_decay: float | None = None,
        epochs: int | None = None,
    ) -> dict[str, list[float]]:
        """Train by minibatch stochastic gradient descent, as the lab's loop does.

        Each iteration takes a batch of ``batch_size`` rows, one optimiser step on the
        lab's loss, and records the loss. An epoch is ``max(N // batch_size, 1)``
        iterations; after each, the accuracy on its last batch and on the validation
        set is recorded, and the ``"step"`` schedule multiplies the learning rate by
        ``learning_rate_decay``.

        Parameters
        ----------
        X : array, shape (N, D)
        y : array of int, shape (N,)
            Training rows and their labels in [0, C).
        X_val : array, shape (N_val, D), or None
        y_val : array of int, shape (N_val,), or None
            Validation rows and labels; None (both) records no validation accuracy.
        learning_rate, learning_rate_decay, reg, num_iters, batch_size, momentum
            The lab's hyperparameters. With ``shuffle``, ``schedule``, ``compile``,
            ``optimizer``, ``dropout``, ``augment`` and ``weight_decay``, these are the
            fields of :class:`xpnet.training.TrainSettings`, which says what each does
            and checks them all before anything changes. ``num_iters`` defaults to 100.
            :class:`xpnet.sklearn.TwoLayerClassifier` calls ``learning_rate``
            ``learning_rate_init`` and ``optimizer`` ``solver``, as ``MLPClassifier`` does.
        epochs : int, optional
            Train this many epochs instead of ``num_iters`` iterations (give one or the
            other): ``epochs * max(N // batch_size, 1)`` iterations.
        verbose : bool, default False
            Print the loss every 100 iterations.
        progress : callable, optional
            ``progress(iteration, loss, learning_rate)`` after every chunk of steps (one
            step eager, up to 100 compiled); the loss is a 0-d array on the device.
        on_epoch : callable, optional
            ``on_epoch(epoch, mean_loss, val_acc)`` after every epoch, as floats
            (``val_acc`` None without validation data); True stops the training there.

        Returns
        -------
        dict
            ``loss_history`` (a float per iteration), ``train_acc_history`` and
            ``val_acc_history`` (a float per epoch). :attr:`last_training` records the
            settings (``last_training["settings"]``), the path that ran and the final
            figures.

        Raises
        ------
        TypeError, ValueError
            For bad data or settings, before any parameter changes.
        xpnet.errors.TrainingDivergedError
            If the loss or the parameters become NaN or infinite; the network keeps
            its parameters from the last check with finite values.
        xpnet.errors.TrainingInterrupted
            On Ctrl-C, after the current step (eager) or chunk (compiled).
        """
        from xpnet.training import TrainSettings, fit, num_iters_for  # the loop of this math

        rows = int(np.shape(X)[0]) if np.ndim(X) else 0  # X itself is checked by fit
        settings = TrainSettings(
            **self.network_settings(), learning_rate=learning_rate,
            learning_rate_decay=learning_rate_decay, reg=reg, weight_decay=weight_decay,
            num_iters=num_iters_for(num_iters, epochs, rows, batch_size), batch_size=batch_size,
            momentum=momentum, shuffle=shuffle, schedule=schedule, compile=compile,
            optimizer=optimizer, dropout=dropout, augment=augment,
        )  # fmt: skip
        return fit(self, settings, X, y, X_val, y_val, verbose=verbose, progress=progress,
                   on_epoch=on_epoch)  # fmt: skip

    def network_settings(self) -> dict[str, Any]:
        """The sizes, initialisation, seed and compute settings of this network: the
        :class:`xpnet.training.TrainSettings` fields that describe it."""
        from xpnet.training import ComputeSettings

        D, H, C = self.sizes
        return {
            "input_size": D, "hidden_size": H, "output_size": C, "init": self.init,
            "std": self.std, "seed": self.seed,
            "compute": ComputeSettings(self.backend, dtype=_dtype_name(self.dtype)),
        }  # fmt: skip

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
        write_model(path, self.params, {"training": self.last_training, **metadata}, extras)

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
        net.params = map_params(
            lambda p: net.backend.asarray(p, dtype=net.dtype), params_from(params)
        )
        net.init, net.std = _recorded_initialisation(metadata)
        net.last_training = metadata.get("training")
        net.metadata = metadata
        described = metadata.get("preprocessing")
        if isinstance(described, dict):
            mean = extras["preprocessing_mean"]
            net.preprocessing = Preprocessing(described["name"], described["scale"], mean)
        return net

    @property
    def training(self) -> dict[str, Any] | None:
        """Deprecated: the old name of :attr:`last_training`, until xpnet 0.2."""
        warn_renamed("TwoLayerNet.training", "TwoLayerNet.last_training")
        return self.last_training

    @training.setter
    def training(self, value: dict[str, Any] | None) -> None:
        warn_renamed("TwoLayerNet.training", "TwoLayerNet.last_training")
        self.last_training = value

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
        if "training" in state:  # pickled before the attribute was named last_training
            state["last_training"] = state.pop("training")
        self.__dict__.update(state)
        self.dtype = self.backend.dtype(state["dtype"])

    def _predict(self, X: Array) -> Array:
        _, scores = forward(self.xp, self.params, X)
        return self.xp.argmax(scores, axis=1)

    def _standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        if isinstance(self._rng, np.random.Generator):
            return self._rng.standard_normal(shape)
        return self._rng.randn(*shape)


def _recorded_initialisation(metadata: dict[str, Any]) -> tuple[Init, float]:
    """The initialisation a model file's training settings record; the lab's where they
    record none (files from before xpnet recorded it) or none that is valid."""
    recorded = (metadata.get("training") or {}).get("settings") or {}
    try:
        return (_checks.choice("init", recorded.get("init"), INITS),
                _checks.real("std", recorded.get("std"), low=0.0, low_open=False))  # fmt: skip
    except (TypeError, ValueError):
        return "gaussian", 1e-4


def _dtype_name(dtype: Any) -> DType:
    """``"float32"`` or ``"float64"``, whichever library's dtype this is."""
    return "float32" if "float32" in str(dtype) else "float64"
