"""The estimator's hyperparameters, made from the table in :mod:`xpnet.hyperparameters`.

Each row of the table that has an estimator name is a keyword of
:class:`~xpnet.sklearn.TwoLayerClassifier`: here are its default (``MLPClassifier``'s
where it has the hyperparameter), its scikit-learn constraint, its entry in the
docstring, and its place in ``__init__``'s signature, from which scikit-learn's
``get_params``, ``set_params`` and ``clone`` read the parameters.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import TypeAlias

from sklearn.utils._param_validation import Interval, StrOptions

from xpnet.hyperparameters import Hyperparameters, Row, rows

__all__ = [
    "DEFAULTS",
    "Constraint",
    "constraints",
    "docstring",
    "estimator_name",
    "estimator_rows",
    "signature",
    "values",
]

#: The estimator's defaults of the hyperparameters, values only (as a recipe's):
#: ``MLPClassifier``'s where it has the hyperparameter, the table's elsewhere.
DEFAULTS = Hyperparameters(
    hidden_size=100, learning_rate=0.01, learning_rate_decay=1.0, reg=1e-4, momentum=0.9,
    init="he", shuffle=True,
)  # fmt: skip

#: One of scikit-learn's parameter constraints, as its parameter validation reads them: a
#: range, string options, a name of a kind of value (``"boolean"``, ``"random_state"``),
#: or None (None is allowed).
Constraint: TypeAlias = Interval | StrOptions | str | None

#: What the estimator adds to the table's line of a hyperparameter, by the table's name.
NOTES = {
    "learning_rate": "Named as in ``MLPClassifier`` (``TwoLayerNet.train``'s ``learning_rate``).",
    "schedule": "``MLPClassifier`` calls its schedule ``learning_rate``, with other choices: "
    'its ``"constant"`` is ``schedule="step"`` with ``learning_rate_decay=1.0`` (the '
    'defaults); ``"invscaling"`` and ``"adaptive"`` have no counterpart here. The '
    "cosine schedule's run is ``max_iter`` epochs of ``fit``. Each ``partial_fit`` call "
    "is one epoch of a run of its own: it starts at ``learning_rate_init``, and neither "
    "the step schedule's decay nor the cosine schedule carries over from call to call.",
    "reg": "``MLPClassifier``'s ``alpha`` is divided by the batch size: ``alpha = reg * "
    "batch_size`` is the same penalty.",
    "weight_decay": 'Only used when ``solver="adamw"``.',
    "batch_size": "At most the number of samples.",
    "optimizer": 'Named ``solver`` as in ``MLPClassifier`` (whose ``"sgd"`` and '
    '``"adam"`` it shares; ``TwoLayerNet.train`` calls it ``optimizer``). Each ``fit``, '
    "and each ``partial_fit`` call, starts the optimiser's state afresh.",
    "momentum": 'Only used when ``solver="sgd"``, as in ``MLPClassifier``.',
}

#: ``MLPClassifier``'s parameters that the estimator spells otherwise, and where they are.
MLP_NAMES = {
    "learning_rate": "MLPClassifier's learning_rate (its schedule) is schedule= here: 'step' "
    "or 'cosine'; its 'constant' is schedule='step' with learning_rate_decay=1.0 (the "
    "defaults). The initial rate is learning_rate_init, as in MLPClassifier.",
    "alpha": "MLPClassifier's alpha is reg * batch_size here: reg, the loss's L2 term, is "
    "not divided by the batch size.",
    "hidden_layer_sizes": "the network has one hidden layer: give hidden_size.",
}


def estimator_rows() -> tuple[Row, ...]:
    """The table's hyperparameters that are the estimator's parameters, in its order."""
    return tuple(row for row in rows() if row.estimator is not None)


def estimator_name(row: Row) -> str:
    """A hyperparameter's name in the estimator."""
    return row.estimator or row.name


def values(given: Mapping[str, object]) -> dict[str, object]:
    """Every hyperparameter's value by its estimator name: ``given``'s, else the default.

    Raises
    ------
    TypeError
        If ``given`` names a keyword that is not a hyperparameter of the estimator; the
        message says where ``MLPClassifier``'s spellings of one are.
    """
    unknown = sorted(set(given) - {estimator_name(row) for row in estimator_rows()})
    if unknown:
        hint = " ".join(MLP_NAMES.get(name, "") for name in unknown)
        raise TypeError(
            f"TwoLayerClassifier got unexpected keyword arguments {unknown}; see "
            f"help(TwoLayerClassifier) for its parameters. {hint}".strip()
        )
    return {
        estimator_name(row): given.get(estimator_name(row), getattr(DEFAULTS, row.name))
        for row in estimator_rows()
    }


def constraints() -> dict[str, list[Constraint]]:
    """Each hyperparameter's range as scikit-learn's parameter validation declares it."""
    return {estimator_name(row): _constraint(row) for row in estimator_rows()}


def _constraint(row: Row) -> list[Constraint]:
    if row.choices:
        return [StrOptions(set(row.choices))]
    if row.kind is bool:
        return ["boolean"]
    if row.kind is int:
        return [Interval(Integral, 1, None, closed="left")]
    high = None if math.isinf(row.high) else row.high
    closed = ("neither" if high is None else "right") if row.low_open else (
        "left" if high is None else "both")  # fmt: skip
    return [Interval(Real, row.low, high, closed=closed)]


def docstring(template: str) -> str:
    """``template`` (a class docstring) with the numpydoc entries of the hyperparameters,
    from the table and :data:`NOTES`, in place of its line ``HYPERPARAMETERS``."""
    entries = []
    for row in estimator_rows():
        default = getattr(DEFAULTS, row.name)
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        note = f" {NOTES[row.name]}" if row.name in NOTES else ""
        text = textwrap.fill(f"{row.help[0].upper()}{row.help[1:]}.{note}", 84)
        entries.append(f"{estimator_name(row)} : {_kind(row)}, default {shown}\n"
                       + textwrap.indent(text, "    "))  # fmt: skip
    return inspect.cleandoc(template).replace("HYPERPARAMETERS", "\n".join(entries))


def signature(init: Callable[..., None]) -> inspect.Signature:
    """``init``'s signature with its ``**hyperparameters`` spelt out: the hyperparameters,
    each a keyword with its default, then ``init``'s own keywords. scikit-learn reads the
    parameters' names (``get_params``, ``set_params``, ``clone``) from it, and ``help``
    shows it."""
    own = list(inspect.signature(init).parameters.values())
    table = [
        inspect.Parameter(estimator_name(row), inspect.Parameter.KEYWORD_ONLY,
                          default=getattr(DEFAULTS, row.name), annotation=_annotation(row))
        for row in estimator_rows()
    ]  # fmt: skip
    listed = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return inspect.Signature([listed[0], *table, *listed[1:]])


def _kind(row: Row) -> str:
    """A hyperparameter's type as the docstring gives it: ``int`` or ``{"a", "b"}``."""
    if row.choices:
        return "{" + ", ".join(f'"{choice}"' for choice in row.choices) + "}"
    return row.kind.__name__


def _annotation(row: Row) -> str:
    """A hyperparameter's type as the signature gives it (a string, as the estimator's
    own annotations are): ``'int'`` or ``"Literal['a', 'b']"``."""
    if row.choices:
        return f"Literal[{', '.join(map(repr, row.choices))}]"
    return row.kind.__name__
