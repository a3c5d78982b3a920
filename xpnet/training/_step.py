"""One training step: the lab's loss on a batch, then an optimiser update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, cast

from xpnet._typing import Array, Namespace, Params
from xpnet.augment import Augmentation
from xpnet.functional import cross_entropy, l2_penalty
from xpnet.optim import SGD, Adam, OptimizerState, per_network
from xpnet.training._randomness import Members, draw_noise, noise_names

__all__ = ["TrainState", "TrainStep"]


class TrainState(TypedDict):
    """What a training step updates: the parameters and the optimiser's state."""

    params: Params
    optimizer: OptimizerState


@dataclass(frozen=True)
class TrainStep:
    """One step of minibatch training: the lab's loss on a batch, then an optimiser update.

    Runners call it eagerly, trace it (``jax.jit``) or capture it (CUDA graphs); it
    is the one copy of the step's math. Frozen, so a compiled runner can key its
    cache on it. Its randomness (dropout masks, distortions) is drawn on the device,
    from the run's stream keys and the step's counter
    (:func:`~xpnet.training._randomness.draw_noise`): inside the step, where a runner
    passes only the batch's rows and the step number (compiled runners), or ahead, for
    several steps in one call, and passed in with them (the eager loop). A step's
    numbers are the same either way.

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
    members : Members or None
        For K networks trained together (:func:`~xpnet.training.fit_many`), their
        hidden sizes and dropout rates; their parameters are then stacks of K, their
        batches (K, B) and their ``reg``, ``momentum``, ``weight_decay`` and
        ``dropout_scale`` (K,) arrays in ``data`` (``reg`` and ``dropout`` above then
        say only whether the step has these terms). None: one network.
    """

    xp: Namespace
    optimizer: SGD | Adam
    reg: float
    dropout: float = 0.0
    augment: Augmentation | None = None
    members: Members | None = None

    def __call__(
        self, state: TrainState, data: dict[str, Array], inputs: dict[str, Array],
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
            (:func:`~xpnet.training._randomness.stream_keys`); and the augmentation's
            constants.
        inputs : dict
            ``batch`` (B,), the rows of this step; ``step``, a 0-d int32 array: the
            step's number in the run, the counter of its random draws; and, where
            they were drawn ahead, the step's noise (all of
            :func:`~xpnet.training._randomness.noise_names`), else the step draws it.
        lr : float or 0-d array
            The learning rate; (K,), one per network, for a stack.

        Returns
        -------
        array, shape () or (K,)
            The lab's loss on the batch, before the update (of each network).
        """
        xp, params = self.xp, state["params"]
        batch, step = inputs["batch"], inputs["step"]
        X_batch, T_batch = _take(xp, data["X"], batch), _take(xp, data["T"], batch)
        names = noise_names(self.dropout, self.augment)
        if all(name in inputs for name in names):
            draws = {name: inputs[name] for name in names}
        else:
            draws = draw_noise(xp, data, step, batch.shape[-1], params["W1"].shape[-1],
                               dropout=self.dropout, augment=self.augment,
                               members=self.members)  # fmt: skip
        if self.augment is not None:  # each image alone: K batches' as one of K * B
            joined = _joined if self.members is not None else _as_is
            images = joined(xp, X_batch - data["blank"])
            noise = {name: joined(xp, draws[name]) for name in names if name != "keep"}
            distorted = self.augment.apply(xp, images, noise, data)
            X_batch = xp.reshape(distorted, X_batch.shape) + data["blank"]
        mask = None
        if self.dropout:
            scale = 1 / (1 - self.dropout) if self.members is None else data["dropout_scale"]
            keep = xp.astype(draws["keep"], X_batch.dtype)
            mask = keep * per_network(xp, scale, keep)
        values = None if self.members is None else \
            {name: data[name] for name in ("reg", "momentum", "weight_decay")}  # fmt: skip
        loss, grads = cross_entropy(xp, params, X_batch, T_batch, mask)
        reg = self.reg if values is None else values["reg"]
        loss = loss + l2_penalty(xp, params, reg)  # the L2 gradient is the optimizer's
        updated = cast("dict[str, Array]", params)  # a TypedDict is a dict: updated by name
        self.optimizer.step(xp, updated, grads, state["optimizer"], lr, values)
        return loss


def _take(xp: Namespace, rows: Array, batch: Array) -> Array:
    """The rows a batch names: (B,) indices give (B, ...); (K, B), a stack's, (K, B, ...)."""
    if batch.ndim == 1:
        return xp.take(rows, batch, axis=0)
    taken = xp.take(rows, xp.reshape(batch, (-1,)), axis=0)
    return xp.reshape(taken, (*batch.shape, *rows.shape[1:]))


def _joined(xp: Namespace, x: Array) -> Array:
    """K batches of B rows, (K, B, ...), as one of K * B rows."""
    return xp.reshape(x, (-1, *x.shape[2:]))


def _as_is(xp: Namespace, x: Array) -> Array:
    return x
