"""The settings of a training run, validated completely when they are built.

Every entry point (``TwoLayerNet.train``, :func:`xpnet.pipeline.run`, the ``xpnet``
command, the scikit-learn estimator and ``xpnet tune``) builds a
:class:`TrainSettings` before it changes, writes or starts anything. Building one
checks the types (TypeError), the ranges and the combinations (ValueError naming the
argument and what it may be), that the arrays fit in the device's memory, and, through
its :class:`ComputeSettings`, that the backend, device and dtype exist on this machine.
The loop that reads the settings checks nothing again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xpnet import _checks
from xpnet._typing import Compile, Device, DType, JSONObject, Namespace
from xpnet._wording import setting
from xpnet.augment import Augmentation
from xpnet.backend import (
    Backend,
    allow_float64,
    portable_device,
    product_size,
    resolve_backend,
    resolve_threads,
)
from xpnet.hyperparameters import Hyperparameters, rows

if TYPE_CHECKING:
    import numpy as np
from xpnet.training._record import iterations_per_epoch
from xpnet.training._runners import compiled_runner_kind

__all__ = ["NETWORK_FIELDS", "ComputeSettings", "TrainSettings", "num_iters_for"]

#: The :class:`TrainSettings` fields that describe the network itself:
#: :meth:`xpnet.TwoLayerNet.train` takes them from the net, and every other field as a keyword.
NETWORK_FIELDS = frozenset(
    {"input_size", "hidden_size", "output_size", "init", "std", "seed", "compute"}
)


@dataclass(frozen=True)
class ComputeSettings:
    """Where a network computes: an array library, one of its devices, and a dtype.

    Building one imports the library and checks that the device exists on this
    machine and supports the dtype.

    Parameters
    ----------
    backend : str, module or Backend, default "numpy"
        A name of :data:`xpnet.SUPPORTED_BACKENDS`, an Array API namespace, or a
        :class:`xpnet.Backend`.
    device : object, optional
        The backend's device (``"cuda:1"`` for torch, ``1`` for CuPy, ``"gpu:0"`` for
        JAX); its default device when None.
    dtype : {"float64", "float32"}, default "float64"
    enable_float64 : bool, default False
        Switch on, for the whole process, the library's 64-bit mode where float64
        needs a global switch (JAX's ``jax_enable_x64``). The command line does; a
        library call leaves the process's settings alone unless asked. Unpickling the
        settings in another process (a Dask worker) switches it on there too.

    Raises
    ------
    TypeError, ValueError, ImportError, RuntimeError
        For a bad dtype, an unknown backend or device, a missing library, or a GPU
        device on a machine without one.
    """

    backend: str | Namespace | Backend = "numpy"
    device: Device | None = None
    dtype: DType = "float64"
    enable_float64: bool = False
    #: The resolved backend on its device.
    resolved: Backend = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _checks.flag("enable_float64", self.enable_float64)
        _checks.dtype(self.dtype)
        object.__setattr__(self, "dtype", str(self.dtype))  # a plain str (not a subclass)
        if isinstance(self.backend, str):
            object.__setattr__(self, "backend", str(self.backend))
        if self.enable_float64 and self.dtype == "float64" and isinstance(self.backend, str):
            allow_float64(self.backend)
        resolved = resolve_backend(self.backend, self.device)
        resolved.dtype(self.dtype)  # raises where the device lacks it
        object.__setattr__(self, "resolved", resolved)

    def __reduce__(self) -> tuple[type[ComputeSettings], tuple[str, Device, DType, bool]]:
        """Pickle by name and device; unpickling checks (and switches on) everything again."""
        name = self.resolved.name
        return (
            ComputeSettings,
            (name, portable_device(name, self.resolved.device), self.dtype, self.enable_float64),
        )

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.resolved.name

    def to_dict(self) -> dict[str, str]:
        """The settings as plain data (the device as the backend writes it)."""
        return {"backend": self.name, "device": self.resolved.device_name, "dtype": self.dtype}


@dataclass(frozen=True, kw_only=True)
class TrainSettings(Hyperparameters):
    """Every choice of a training run: the hyperparameters, the network's sizes, the
    randomness, how steps run and where.

    All arguments are keyword-only. The hyperparameters are the fields of
    :class:`xpnet.hyperparameters.Hyperparameters`, whose table gives each one's
    meaning, range and default (the lab's ``TwoLayerNet.train``'s); ``reg`` is the
    loss's L2 term with every optimiser, ``weight_decay`` AdamW's decoupled weight
    decay (refused with SGD and Adam, whose L2 term is ``reg``, as ``torch.optim.SGD``
    and ``Adam`` call theirs ``weight_decay``). Besides them:

    Parameters
    ----------
    input_size, output_size : int
        The network's D and C (``hidden_size``, its H, is a hyperparameter).
    seed : int, optional
        Seeds the initialisation, the batches and the noise; None uses NumPy's global
        state, as the lab does.
    augment : Augmentation, optional
        Random distortions of each batch (:mod:`xpnet.augment`); its images must have
        ``input_size`` pixels.
    compile : {"auto", True, False}, default "auto"
        How the steps run (:func:`xpnet.training.select_runner`); True needs a backend
        and device with a compiled path.
    threads : int, optional
        The CPU threads the steps' matrix products run on (the BLAS's and torch's pools,
        or, for products of 40 to 400 million multiply-adds, halves of each on xpnet's own
        threads: :func:`xpnet.backend.using_threads`; set for the run and restored after);
        None: the count :data:`xpnet.backend.THREADS_BY_SIZE` gives their size, at most
        those the process allows (:meth:`thread_count`). Like ``compile``, it is how the
        steps run, not what they compute (though, in the BLAS's threads, the last bits move
        with it), so it is no hyperparameter; and it is a choice of each run, where
        ``compute`` is the network's (its arrays live there).
    compute : ComputeSettings, default NumPy float64
        The backend, device and dtype.

    Raises
    ------
    TypeError
        For a value of the wrong type (``batch_size=2.5``, ``augment="affine"``).
    ValueError
        For a value out of range, a combination that cannot run (momentum with Adam,
        a ``learning_rate_decay`` other than 1 with the cosine schedule, ``compile=True``
        without a compiled path), or arrays that cannot fit in the memory the device
        has for this process; the message names the argument and what it may be.

    Notes
    -----
    ``init`` and ``std`` say how the network's weights were, or will be, drawn. Whether
    an ``std`` suits the dtype is checked where weights are drawn (:class:`xpnet.TwoLayerNet`,
    :meth:`xpnet.recipes.Recipe.settings`), not for a run that trains weights that exist
    (a loaded network, trained on in another dtype than it was made in).
    """

    input_size: int
    output_size: int
    seed: int | None = None
    augment: Augmentation | None = None
    compile: Compile = "auto"
    threads: int | None = None
    compute: ComputeSettings = field(default_factory=ComputeSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.compute, ComputeSettings):
            raise TypeError(f"compute must be a ComputeSettings, got {self.compute!r}")
        checked = {row.name: row.check(getattr(self, row.name)) for row in rows()}
        checked |= {
            "input_size": _checks.positive_int("input_size", self.input_size),
            "output_size": _checks.positive_int("output_size", self.output_size),
            "seed": None if self.seed is None else _checks.seed(self.seed),
            "compile": _checks.choice("compile", self.compile, ("auto", True, False)),
            "threads": self.threads if self.threads is None
                       else _checks.positive_int(setting("threads"), self.threads),
        }  # fmt: skip
        for name, value in checked.items():  # as plain Python numbers
            object.__setattr__(self, name, value)
        if self.augment is not None and not isinstance(self.augment, Augmentation):
            raise TypeError(
                f"augment must be an xpnet.augment.Augmentation or None, got {self.augment!r}"
            )
        self._check_combinations()
        self._check_memory()

    def _check_combinations(self) -> None:
        if self.schedule == "cosine" and self.learning_rate_decay != 1.0:
            raise ValueError(
                f"learning_rate_decay={self.learning_rate_decay!r} is the step schedule's "
                "factor after every epoch; the cosine schedule takes none: pass "
                f"{setting('learning_rate_decay', 1.0)}, or {setting('schedule', 'step')}"
            )
        if self.weight_decay and self.optimizer != "adamw":
            raise ValueError(
                f"weight_decay={self.weight_decay!r} is AdamW's decoupled weight decay; "
                f"{self.optimizer} takes the L2 term reg instead (which torch.optim."
                f"{'SGD' if self.optimizer == 'sgd' else 'Adam'} calls weight_decay): pass "
                f"{setting('weight_decay', 0)} and set {setting('reg')}, or "
                f"{setting('optimizer', 'adamw')}"
            )
        if self.optimizer != "sgd" and self.momentum:
            raise ValueError(
                f"momentum={self.momentum} is SGD's; {self.optimizer} keeps its own moments: "
                f"pass {setting('momentum', 0)}"
            )
        if self.augment is not None:
            height, width = self.augment.image_shape
            if height * width != self.input_size:
                raise ValueError(
                    f"augment distorts images of {height}x{width} pixels, but the rows have "
                    f"{self.input_size} values (input_size); give augment the images' shape"
                )
        backend = self.compute.resolved
        if self.compile is True and compiled_runner_kind(backend) is None:
            raise ValueError(
                f"compile=True, but {backend} has no compiled training path; use "
                "compile='auto' or False"
            )

    def _check_memory(self) -> None:
        D, H, C = self.input_size, self.hidden_size, self.output_size
        backend, dtype = self.compute.resolved, self.compute.resolved.dtype(self.compute.dtype)
        _checks.network_fits(backend, D, H, C)
        # A step's batch, activations and gradients: (B, D + 2C + 3H) values at most.
        _checks.fits_in_memory(backend, self.batch_size * (D + 2 * C + 3 * H), dtype,
                               f"batch_size={self.batch_size} with hidden_size={H}")  # fmt: skip

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        return self.input_size, self.hidden_size, self.output_size

    def check_generator(self, rng: np.random.Generator | None, name: str = "rng") -> None:
        """Refuse a run of these settings without a generator (``rng`` None: NumPy's global
        state) when they have a seed: it could not be repeated, and its record would name
        a seed that drew nothing. ``name`` is the generator's argument, for the message."""
        if rng is None and self.seed is not None:
            raise ValueError(
                f"the settings' seed={self.seed} seeds nothing here: {name} is None, so the run "
                "would draw from NumPy's global state. Pass the generator the seed made "
                f"({name}=net.rng of TwoLayerNet(..., seed={self.seed}), after its "
                "initialisation), or settings with seed=None"
            )

    def thread_count(self) -> int:
        """The CPU threads a run by these settings uses: :attr:`threads`, or, when None,
        the count :data:`xpnet.backend.THREADS_BY_SIZE` gives its steps' largest product
        (the batch by the first layer's weights), at most those the process allows now
        (:func:`xpnet.backend.available_threads`)."""
        return resolve_threads(self.threads, self.largest_product(), self.compute.resolved)

    def largest_product(self) -> int:
        """The multiply-adds of a step's largest product: the batch by the first layer."""
        D, H, _ = self.sizes
        return product_size(self.batch_size, D, H)

    @classmethod
    def of_network(
        cls, sizes: tuple[int, int, int], network: dict[str, Any], *, rows: int,
        epochs: int | None, num_iters: int | None, learning_rate_decay: float | None,
        **fields: Any,
    ) -> TrainSettings:  # fmt: skip
        """The settings of a :meth:`xpnet.TwoLayerNet.train` call: the network's ``sizes``
        (D, H, C) and the rest of its :data:`~xpnet.training.NETWORK_FIELDS` (``network``),
        and the call's run ``fields``, with the lab's defaults: ``num_iters`` (or ``epochs``
        of ``rows`` rows) 100, ``learning_rate_decay`` 0.95 (1.0 with the cosine schedule).

        Raises
        ------
        TypeError
            For a field that is no run field (naming those there are), or as ``__init__``.
        """
        # Any: the fields' values, of every type, checked by __init__.
        run_fields = {f.name for f in dataclasses.fields(cls)} - NETWORK_FIELDS
        if unknown := sorted(fields.keys() - run_fields):
            raise TypeError(
                f"train() got {unknown}: it takes epochs, on_epoch and TrainSettings' fields "
                f"{sorted(run_fields)}; the network's {sorted(NETWORK_FIELDS)} go to TwoLayerNet()"
            )
        if learning_rate_decay is None:  # the step schedule's factor; cosine takes none
            learning_rate_decay = 1.0 if fields.get("schedule") == "cosine" else 0.95
        D, H, C = sizes
        steps = num_iters_for(num_iters, epochs, rows, fields.get("batch_size", 200))
        return cls(input_size=D, hidden_size=H, output_size=C, num_iters=steps,
                   learning_rate_decay=learning_rate_decay, **network, **fields)  # fmt: skip

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with some fields replaced, validated again."""
        # Any: fields of every type, passed on to dataclasses.replace, which the checks follow.
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> JSONObject:
        """The settings as plain data (JSON-serialisable): what a model file records."""
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        plain["augment"] = None if self.augment is None else dataclasses.asdict(self.augment)
        plain["compute"] = self.compute.to_dict()
        return plain


def num_iters_for(
    num_iters: int | None, epochs: int | None, num_rows: int, batch_size: int, *, default: int = 100
) -> int:
    """The steps of a run given in iterations or in epochs (one of them, or neither).

    ``epochs`` makes ``epochs * max(num_rows // batch_size, 1)`` steps
    (:func:`~xpnet.training.iterations_per_epoch`); neither makes ``default``.

    Raises
    ------
    TypeError, ValueError
        For both given, or an ``epochs`` (or ``batch_size``, with it) that is not a
        positive integer.
    """
    if epochs is None:
        steps: int = default if num_iters is None else num_iters  # TrainSettings checks it
        return steps
    count = _checks.positive_int(setting("epochs"), epochs)
    if num_iters is not None:
        raise ValueError(
            f"give num_iters or epochs, not both (got num_iters={num_iters!r}, "
            f"epochs={count!r}): an epoch is max(rows // batch_size, 1) iterations"
        )
    return count * iterations_per_epoch(
        num_rows, _checks.positive_int(setting("batch_size"), batch_size)
    )
