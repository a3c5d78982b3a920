"""The hyperparameters of training: one table, from which every list of them is made.

Each field of :class:`Hyperparameters` is one hyperparameter, written once: its type
(the annotation; a ``Literal`` gives the choices), its default, the range it may take,
what it means, and, where ``xpnet tune`` searches it, the range it searches around a
recipe's value. Made from the table:

- :class:`xpnet.training.TrainSettings` (a subclass) and its checks (:meth:`Row.check`);
- :class:`xpnet.recipes.Recipe` (a subclass), and from it the ``xpnet train`` options;
- the ``xpnet tune`` range options and :func:`xpnet.tune.default_space`;
- the parameters of :class:`xpnet.sklearn.TwoLayerClassifier` and its
  ``_parameter_constraints``.

A new hyperparameter is one field here and its use in the training step.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from xpnet import _checks
from xpnet._typing import Init, OptimizerName, Schedule
from xpnet._wording import setting

__all__ = [
    "MAX_DROPOUT",
    "MAX_MOMENTUM",
    "Hyperparameters",
    "Row",
    "Search",
    "row",
    "rows",
    "values_of",
]

#: The largest momentum: at 1 the velocity never decays.
MAX_MOMENTUM = 0.999
#: The largest dropout rate: beyond it almost no unit learns in a step.
MAX_DROPOUT = 0.95


@dataclass(frozen=True)
class Search:
    """What ``xpnet tune`` searches of a hyperparameter unless told otherwise.

    Attributes
    ----------
    scale : {"log", "linear", "choices"}
        A range on a log or a linear scale (``--NAME LOW HIGH``), or values to choose
        from (``--NAME V [V ...]``).
    around : callable
        ``around(value, recipe)``: from a recipe's value (and its other settings), the
        range's two ends, or the values to choose from; None where the recipe has no
        use for the hyperparameter (momentum with Adam).
    """

    scale: Literal["log", "linear", "choices"]
    # Any: the value is of the hyperparameter's own type, which each row decides.
    around: Callable[[Any, Hyperparameters], tuple[Any, ...] | None]


@dataclass(frozen=True)
class Row:
    """One hyperparameter: what the table says of it.

    Attributes
    ----------
    help : str
        What it means, in a line (the command line's help, the estimator's docstring).
    low, high : float
        For a real number: its range, ``[low, high]``, or ``(low, high]`` when
        ``low_open``; an infinite ``high`` is open. Whole numbers are sizes and
        counts: positive.
    low_open : bool
    search : Search or None
        ``xpnet tune``'s default search of it; None: not searched.
    estimator : str or None
        Its name in :class:`xpnet.sklearn.TwoLayerClassifier` (``""``: its own name);
        None: not a parameter of the estimator.
    name, kind, choices, default, required
        Read from the table's field by :func:`rows`: the name, the type (``int``,
        ``float``, ``bool``, or ``str`` for a ``Literal``), the ``Literal``'s values, the
        default, and whether it has none (``hidden_size``: a recipe always gives it).
    """

    help: str
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False
    search: Search | None = None
    estimator: str | None = ""
    name: str = ""
    kind: type = object
    choices: tuple[str, ...] = ()
    # Any: a value of the hyperparameter's type (``kind``), which each row decides.
    default: Any = None
    required: bool = False

    def check(self, value: object) -> Any:
        """``value`` as a plain Python value of the row's ``kind`` if the hyperparameter
        may take it.

        Raises
        ------
        TypeError
            For a value of the wrong type (``batch_size=2.5``, ``shuffle="no"``).
        ValueError
            For one out of range or not among the choices; the message names it.
        """
        name = setting(self.name)  # as the caller names it: hidden_size, or --hidden-size
        if self.choices:
            return _checks.choice(name, value, self.choices)
        if self.kind is bool:
            return _checks.flag(name, value)
        if self.kind is int:
            return _checks.positive_int(name, value)
        return _checks.real(name, value, low=self.low, high=self.high, low_open=self.low_open)


def row(**what: Any) -> dict[str, Row]:
    """A table field's metadata: its :class:`Row`, from what the table says of it (the
    keywords of :class:`Row`, passed on)."""
    return {"row": Row(**what)}


def _l2_unused(reg: float, hp: Hyperparameters) -> bool:
    """Whether a recipe leaves its L2 term out of a search: an AdamW one without one."""
    return hp.optimizer == "adamw" and reg == 0


def _decade(value: float) -> tuple[float, float]:
    """A decade either way of ``value`` (of 1e-7 for 0)."""
    centre = max(value, 1e-7)
    return centre / 10, centre * 10


def _dropouts(rate: float) -> tuple[float, float]:
    """Dropout rates 0.2 either way of ``rate``, from 0 to 0.9."""
    return round(max(rate - 0.2, 0.0), 2), round(min(rate + 0.2, 0.9), 2)


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """The hyperparameters, one field each; the defaults are the lab's ``TwoLayerNet.train``'s.

    Each field's ``metadata["row"]`` is its :class:`Row`; :func:`rows` reads them.
    """

    hidden_size: int = field(
        metadata=row(
            help="hidden units, the network's H",
            search=Search("log", lambda h, _: (max(h // 4, 8), h * 2)),
        )
    )
    init: Init = field(
        default="gaussian",
        metadata=row(
            help="the initial weights: the lab's std * randn (gaussian), or He's "
            "randn * sqrt(2 / fan_in) (he)"
        ),
    )
    std: float = field(
        default=1e-4,
        metadata=row(help="the scale of gaussian initial weights (He initialisation has none)"),
    )
    learning_rate: float = field(
        default=1e-3,
        metadata=row(
            help="the rate the schedule starts from",
            low_open=True,
            search=Search("log", lambda rate, _: (rate / 10, rate * 10)),
            estimator="learning_rate_init",
        ),
    )
    reg: float = field(
        default=5e-6,
        metadata=row(
            help="the loss's L2 term, 0.5 * reg * (sum(W1**2) + sum(W2**2)), with every "
            "optimizer (torch.optim.SGD and Adam call it weight_decay)",
            search=Search("log", lambda reg, hp: None if _l2_unused(reg, hp) else _decade(reg)),
        ),
    )
    weight_decay: float = field(
        default=0.0,
        metadata=row(
            help="AdamW's decoupled weight decay, W -= lr * weight_decay * W each step, as "
            "torch.optim.AdamW's (0 with sgd and adam, whose L2 term is reg)",
            search=Search("log", lambda wd, hp: _decade(wd) if hp.optimizer == "adamw" else None),
        ),
    )
    batch_size: int = field(
        default=200,
        metadata=row(
            help="rows per step",
            search=Search("choices", lambda b, _: (max(b // 2, 1), b, b * 2)),
        ),
    )
    num_iters: int = field(
        default=100,
        metadata=row(
            help="steps to train",
            search=Search("log", lambda n, _: (max(n // 2, 1), n)),
            estimator=None,  # the estimator trains max_iter epochs
        ),
    )
    shuffle: bool = field(
        default=False,
        metadata=row(
            help="visit a fresh permutation of the rows each epoch (else draw batches with "
            "replacement, as the lab does)"
        ),
    )
    optimizer: OptimizerName = field(
        default="sgd",
        metadata=row(help="the optimiser: SGD (with momentum), Adam or AdamW", estimator="solver"),
    )
    momentum: float = field(
        default=0.0,
        metadata=row(
            help="SGD's momentum (Adam and AdamW keep their own moments)",
            high=MAX_MOMENTUM,
            search=Search("linear", lambda _, hp: (0.0, 0.95) if hp.optimizer == "sgd" else None),
        ),
    )
    schedule: Schedule = field(
        default="step",
        metadata=row(
            help="how the rate changes: times learning_rate_decay after every epoch (step), or "
            "lr * (1 + cos(pi * t / num_iters)) / 2 at step t (cosine)"
        ),
    )
    learning_rate_decay: float = field(
        default=0.95,
        metadata=row(
            help="the step schedule's factor after every epoch",
            low_open=True,
            high=1.0,
            search=Search("linear", lambda _, hp: (0.9, 1.0) if hp.schedule == "step" else None),
        ),
    )
    dropout: float = field(
        default=0.0,
        metadata=row(
            help="inverted dropout's rate on the hidden layer while training",
            high=MAX_DROPOUT,
            search=Search("linear", lambda rate, _: _dropouts(rate) if rate else None),
        ),
    )
    early_stopping: bool = field(
        default=False,
        metadata=row(
            help="stop when the validation accuracy has not improved for patience epochs "
            "(needs validation data)",
            estimator=None,  # the estimator's early_stopping is MLPClassifier's: see its notes
        ),
    )
    patience: int = field(
        default=10,
        metadata=row(
            help="with early_stopping, the epochs in a row without a higher validation "
            "accuracy after which the run stops (Keras's count)",
            estimator=None,  # the estimator's is n_iter_no_change, counted as scikit-learn does
        ),
    )
    restore_best: bool = field(
        default=False,
        metadata=row(
            help="keep the parameters of the epoch of the best validation accuracy instead of "
            "the last (needs validation data)",
            estimator=None,  # the estimator's early_stopping always keeps the best epoch
        ),
    )


def rows(table: type[Hyperparameters] = Hyperparameters) -> tuple[Row, ...]:
    """The rows of ``table`` (:class:`Hyperparameters` or a subclass), in its order, each
    with its name, type, choices and default filled in from its field."""
    hints = typing.get_type_hints(table)  # the annotations, resolved
    found = []
    for f in dataclasses.fields(table):
        if "row" not in f.metadata:
            continue
        kind = hints[f.name]
        choices = typing.get_args(kind) if typing.get_origin(kind) is Literal else ()
        found.append(
            dataclasses.replace(
                f.metadata["row"],
                name=f.name,
                kind=str if choices else kind,
                choices=choices,
                default=None if f.default is dataclasses.MISSING else f.default,
                required=f.default is dataclasses.MISSING,
            )
        )
    return tuple(found)


def values_of(hyperparameters: Hyperparameters) -> dict[str, Any]:
    """The table's values in ``hyperparameters`` (a recipe, say), by name: keywords for
    :class:`~xpnet.training.TrainSettings`, each of its own type."""
    return {row.name: getattr(hyperparameters, row.name) for row in rows()}
