"""The lab's network: a thin class that holds the parameters around :mod:`xpnet.functional`.

:class:`TwoLayerNet` keeps the parameters on its backend's device, computes the
lab's scores and loss with :mod:`xpnet.functional`, trains with
:func:`xpnet.training.fit` (which returns new parameters; the net keeps them), and
saves and loads itself. NumPy on the host draws the initial weights, so that a seed
gives the same network on every backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, overload

import numpy as np

from xpnet import _checks, model_file
from xpnet._typing import (
    INITS,
    JSON,
    Array,
    Device,
    DType,
    Init,
    JSONObject,
    Namespace,
    Params,
    map_params,
    params_from,
)
from xpnet.backend import Backend, dtype_name, resolve_backend, to_numpy
from xpnet.errors import TrainingDivergedError, TrainingInterrupted
from xpnet.functional import forward, softmax, softmax_loss
from xpnet.metrics import accuracy
from xpnet.preprocess import Preprocessing
from xpnet.training import (
    NETWORK_FIELDS,
    Checkpoint,
    Checkpointing,
    ComputeSettings,
    EpochCallback,
    ProgressCallback,
    TrainSettings,
    fit,
    read_checkpoint,
)

__all__ = ["INITS", "NETWORK_FIELDS", "TwoLayerNet"]


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
        Seeds ``rng``, which draws the initial weights and each ``train`` call's seed;
        a run's batch rows, dropout masks and distortions are drawn on the device from it,
        the same numbers on every backend. None: NumPy's global state (``np.random.randn``,
        ``np.random.choice``), as in the lab, so that ``np.random.seed`` reproduces them.
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
        (``"settings"``), the path that ran (``"path"``), the CPU threads it ran on
        (``"threads"``), ``"iterations"`` and the final figures.
    rng : numpy.random.Generator or None
        The source of the initial weights and of each run's seed; None (no ``seed``):
        NumPy's global state.
    metadata : dict
        Metadata read by :meth:`load`; empty for a new network.
    preprocessing : Preprocessing or None
        How raw images become this network's rows, where known: set by
        :func:`xpnet.pipeline.run`, saved with the model and read back by :meth:`load`,
        so that ``net.predict(net.preprocessing(images))`` needs nothing else.

    Notes
    -----
    Methods accept NumPy arrays or arrays of the network's backend, and answer in kind.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        std: float = 1e-4,
        *,
        backend: str | Namespace | Backend = "numpy",
        device: Device | None = None,
        dtype: DType = "float64",
        seed: int | None = None,
        init: Init = "gaussian",
    ) -> None:
        # The arguments first, the backend last: a bad size is told before a missing GPU.
        checked = _checks.network(input_size, hidden_size, output_size, init, std, seed,
                                  _checks.dtype(dtype))  # fmt: skip
        self._setup(backend, device, dtype, seed)
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

    def _setup(self, backend: str | Namespace | Backend, device: Device | None, dtype: object,
               seed: object) -> None:  # fmt: skip
        """Resolve the backend, dtype and random source; no parameters yet."""
        #: The seed of the random source (None: NumPy's global state).
        self.seed: int | None = None if seed is None else _checks.seed(seed)
        self.backend: Backend = resolve_backend(backend, device)
        self.dtype = self.backend.dtype(_checks.dtype(dtype))
        self.rng = None if self.seed is None else np.random.default_rng(self.seed)
        self.last_training: JSONObject | None = None
        self.metadata: JSONObject = {}
        self.preprocessing: Preprocessing | None = None

    @property
    def xp(self) -> Namespace:
        """The Array API namespace of the network's arrays."""
        return self.backend.xp

    @property
    def device(self) -> Device:
        """The device holding the network's arrays."""
        return self.backend.device

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        D, H = self.params["W1"].shape
        return D, H, self.params["W2"].shape[1]

    @overload
    def loss(self, X: Array, y: None = None, reg: float = 0.0) -> Array: ...
    @overload
    def loss(self, X: Array, y: Array, reg: float = 0.0) -> tuple[float, Params]: ...
    def loss(self, X: Array, y: Array | None = None,
             reg: float = 0.0) -> Array | tuple[float, Params]:  # fmt: skip
        """The class scores, or the lab's loss and its gradients.

        ``loss(X)``: the scores of rows ``X`` (N, D), shape (N, C). ``loss(X, y, reg)``:
        with labels ``y`` (N,) in [0, C) and L2 strength ``reg``, the loss (a float) and
        its gradients (a dict with the keys and shapes of ``params``).
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
        """The class of each row of ``X`` (N, D): the index of its highest score, shape (N,)."""
        X_dev, from_host = _checks.features(self.backend, X, self.sizes[0], self.dtype)
        labels = self.xp.argmax(forward(self.xp, self.params, X_dev)[1], axis=1)
        return to_numpy(labels) if from_host else labels

    def score(self, X: Array, y: Array) -> float:
        """The mean accuracy on ``X`` and ``y``, as scikit-learn's ``score``.

        Parameters
        ----------
        X : array, shape (N, D)
            Rows, checked as :meth:`predict` checks them.
        y : array of int, shape (N,)
            Their class labels, in [0, C), checked as :meth:`train` checks them.

        Returns
        -------
        float
            The fraction of rows whose predicted class is their label.
        """
        X_dev, _ = _checks.features(self.backend, X, self.sizes[0], self.dtype)
        y_dev = _checks.labels(self.backend, y, X_dev.shape[0], self.sizes[2])
        predicted = self.xp.argmax(forward(self.xp, self.params, X_dev)[1], axis=1)
        return float(accuracy(self.xp, y_dev, predicted))

    def predict_proba(self, X: Array) -> Array:
        """The class probabilities of each row of ``X`` (N, D), the softmax of its scores:
        shape (N, C), each row summing to one."""
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
        learning_rate_decay: float | None = None,
        reg: float = 5e-6,
        num_iters: int | None = None,
        batch_size: int = 200,
        momentum: float = 0.0,
        verbose: bool = False,
        progress: ProgressCallback | None = None,
        *,
        epochs: int | None = None,
        on_epoch: EpochCallback | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: str | os.PathLike[str] | Checkpoint | None = None,
        **settings: Any,
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
            The lab's hyperparameters (:class:`xpnet.training.TrainSettings` says what
            each does). ``num_iters`` defaults to 100, ``learning_rate_decay`` to the
            lab's 0.95 (1.0 with ``schedule="cosine"``, which takes no other).
        verbose : bool, default False
            Print the loss every 100 iterations.
        progress : callable, optional
            ``progress(iteration, loss, learning_rate)`` after every chunk of steps (one
            step eager, up to 100 compiled); the loss is a 0-d array on the device.
        epochs : int, optional
            Train this many epochs instead of ``num_iters`` iterations (give one or the
            other): ``epochs * max(N // batch_size, 1)`` iterations.
        on_epoch : callable, optional
            ``on_epoch(epoch, mean_loss, val_acc)`` after every epoch, as floats
            (``val_acc`` None without validation data); True stops the training there.
        checkpoint : path-like, optional
            Write the run's checkpoint to this ``.npz`` file every ``checkpoint_every``
            epochs (0: none between), at the end, and when it stops; Ctrl-C and SIGTERM
            then stop it after the current step (:func:`xpnet.training.fit`).
        resume : path-like or Checkpoint, optional
            Continue the run a checkpoint holds, exactly (:func:`xpnet.training.fit`
            says what may differ); the history returned is the whole run's.
        **settings
            The other fields of :class:`~xpnet.training.TrainSettings` (``optimizer``,
            ``dropout``, ``augment``, ``threads``, ...) but :data:`~xpnet.training.NETWORK_FIELDS`.

        Returns
        -------
        dict
            ``loss_history`` (a float per iteration), ``train_acc_history`` and
            ``val_acc_history`` (a float per epoch); ``last_training`` records the run.

        Raises
        ------
        TypeError, ValueError
            For bad data or settings (checked all together), before any parameter changes.
        xpnet.errors.TrainingDivergedError
            If the loss or the parameters become NaN or infinite; the network keeps
            its parameters from the last check with finite values.
        xpnet.errors.TrainingInterrupted
            On Ctrl-C (or SIGTERM, with ``checkpoint``), after the current step (eager)
            or chunk (compiled); the network keeps the parameters of the steps taken.
        xpnet.errors.ModelFileError
            If ``resume`` is no checkpoint, or a damaged one.
        """
        rows = int(np.shape(X)[0]) if np.ndim(X) else 0  # X itself is checked by fit
        compute = ComputeSettings(self.backend, dtype=dtype_name(self.dtype))
        run = TrainSettings.of_network(
            self.sizes, {"init": self.init, "std": self.std, "seed": self.seed, "compute": compute},
            rows=rows, epochs=epochs, learning_rate=learning_rate, reg=reg, num_iters=num_iters,
            learning_rate_decay=learning_rate_decay, batch_size=batch_size, momentum=momentum,
            **settings,
        )  # fmt: skip
        blank = None if self.preprocessing is None else self.preprocessing.blank()  # None: zeros
        if resume is not None and not isinstance(resume, Checkpoint):
            resume = read_checkpoint(resume)
        writing = None if checkpoint is None else Checkpointing(
            checkpoint, checkpoint_every, *model_file.preprocessing_contents(self.preprocessing)
        )  # fmt: skip
        try:
            trained = fit(self.params, run, X, y, X_val, y_val, rng=self.rng, blank=blank,
                          verbose=verbose, progress=progress, on_epoch=on_epoch,
                          checkpoint=writing, resume=resume)  # fmt: skip
        except TrainingDivergedError as diverged:
            self.params = diverged.params
            raise
        except TrainingInterrupted as stopped:
            self.params, self.last_training = stopped.params, stopped.record
            raise
        self.params, self.last_training = trained.params, trained.record
        return trained.history

    def save(
        self, path: str | os.PathLike[str], metadata: Mapping[str, JSON] | None = None
    ) -> None:
        """Write the parameters, ``preprocessing``, ``last_training`` and
        ``metadata`` (JSON-serialisable extras: results, dataset) to the ``.npz`` file
        ``path``, atomically: it is replaced whole (keeping its permissions) or left as it was.

        Raises ValueError, and writes nothing, if ``metadata`` sets a key xpnet writes
        itself (``dtype``, ``sizes``, ``format``, ``training``, ...), is not
        JSON-serialisable, or is more than :meth:`load` takes (over 1 MiB as JSON, or
        nested over 100 deep); OSError, writing nothing, if ``path`` is a directory, a
        device, a FIFO or a socket (or a symlink to one).
        """
        metadata = dict(metadata or {})
        reserved = sorted(set(metadata) & {*model_file.RESERVED_KEYS, "training"})
        if reserved:
            raise ValueError(
                f"metadata may not set {reserved}: xpnet writes these keys itself; rename them"
            )
        described, extras = model_file.preprocessing_contents(self.preprocessing)
        model_file.write_model(path, self.params,
                               {"training": self.last_training, **metadata, **described},
                               extras)  # fmt: skip

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str | Namespace | Backend = "numpy",
        device: Device | None = None,
        dtype: DType | None = None,
    ) -> TwoLayerNet:
        """Read a network saved by :meth:`save` onto ``backend`` and ``device`` (as for
        :class:`TwoLayerNet`), in ``dtype`` (the file's when None).

        The net's ``metadata`` is the file's, its ``preprocessing`` the one saved
        with it (None when it was saved without one). Raises
        :class:`xpnet.errors.ModelFileError` if the file is not a valid xpnet model (see
        :mod:`xpnet.model_file`).
        """
        params, metadata, extras = model_file.read_model(path)
        net = cls.__new__(cls)
        net._setup(backend, device, dtype or metadata["dtype"], seed=0)
        net.params = map_params(
            lambda p: net.backend.asarray(p, dtype=net.dtype), params_from(params)
        )
        net.init, net.std = model_file.recorded_initialisation(metadata)
        net.last_training = metadata.get("training")
        net.metadata = metadata
        net.preprocessing = model_file.recorded_preprocessing(metadata, extras)
        return net

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the dtype by name; the backend pickles by name too (:class:`xpnet.Backend`)."""
        return {**self.__dict__, "dtype": dtype_name(self.dtype)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.dtype = self.backend.dtype(state["dtype"])

    def _standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.rng is None:
            return np.random.randn(*shape)  # noqa: NPY002 - the lab's global state
        return self.rng.standard_normal(shape)
