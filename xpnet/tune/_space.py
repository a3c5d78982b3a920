"""The search space: the lab's knobs, each a range or a set of choices around a recipe.

The knobs, and the ranges searched unless told otherwise, are the hyperparameters'
table's (:class:`xpnet.hyperparameters.Search`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xpnet.hyperparameters import Row, rows
from xpnet.recipes import Recipe

if TYPE_CHECKING:
    from xpnet.pipeline import RunPlan

__all__ = [
    "INTEGER_KNOBS",
    "KNOBS",
    "Choices",
    "Range",
    "SearchSpace",
    "check_space",
    "default_space",
    "distributions",
    "fingerprint",
    "fixed",
    "knob",
    "searched_space",
]


@dataclass(frozen=True)
class Range:
    """Values from ``low`` to ``high``; on a log scale when ``log``; integers when ``integer``.

    ``low == high`` fixes the knob.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def check(self, name: str) -> None:
        """Raise ValueError unless this is a valid range for the knob ``name``."""
        for bound in (self.low, self.high):
            if (
                isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or not math.isfinite(bound)
            ):
                raise ValueError(f"{name}: range bounds must be finite numbers, got {bound!r}")
        if self.low > self.high:
            raise ValueError(f"{name}: low {self.low:g} is above high {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"{name}: a log-scale range must be positive, got low {self.low:g}")
        if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"{name}: an integer range needs integer bounds")


@dataclass(frozen=True)
class Choices:
    """One of a few values."""

    values: tuple[Any, ...]

    def check(self, name: str) -> None:
        """Raise ValueError unless there is at least one choice."""
        if not self.values:
            raise ValueError(f"{name}: give at least one choice")


SearchSpace = Mapping[str, Range | Choices]

#: The hyperparameters a search may turn (those the table gives a search); their
#: ranges are checked by building the run's settings at each end (:func:`check_space`).
KNOBS = tuple(row.name for row in rows() if row.search is not None)
#: The knobs that take whole numbers: a Range of them must be ``integer=True``.
INTEGER_KNOBS = tuple(row.name for row in rows() if row.search is not None and row.kind is int)


def default_space(recipe: Recipe) -> dict[str, Range | Choices]:
    """The ranges the hyperparameters' table gives around a recipe's values.

    As the lab's section 10 searches: hidden size from a quarter to twice the recipe's
    (log scale); learning rate a decade either way (log scale); the L2 term ``reg``
    likewise (except for an AdamW recipe without one), and AdamW's weight decay (AdamW
    only); batch sizes half, equal or twice the recipe's; iterations from half to the
    recipe's; momentum from 0 to 0.95 (SGD only); decay from 0.9 to 1 (the step
    schedule only).
    """
    space: dict[str, Range | Choices] = {}
    for row in rows():
        if row.search is None:
            continue
        found = row.search.around(getattr(recipe, row.name), recipe)
        if found is not None:
            space[row.name] = knob(row, found)
    return space


def knob(row: Row, values: tuple[Any, ...]) -> Range | Choices:
    """A hyperparameter's search, as its row says: ``values`` are a range's ends, or
    the values to choose from."""
    assert row.search is not None
    if row.search.scale == "choices":
        return Choices(tuple(sorted(set(values))))
    low, high = values
    return Range(low, high, log=row.search.scale == "log", integer=row.kind is int)


def searched_space(recipe: Recipe, space: SearchSpace | None) -> dict[str, Range | Choices]:
    """The knobs a search turns: :func:`default_space`'s, with those of ``space`` instead."""
    return {**default_space(recipe), **(space or {})}


def check_space(space: SearchSpace, plan: RunPlan) -> None:
    """Check every knob of ``space`` as training will see it, before anything starts.

    Each knob's ends (each choice) must make valid settings for ``plan``'s run, alone
    and with every other knob at the same end: the same checks as ``xpnet train``'s
    (types, ranges, momentum only for SGD, memory for the largest sizes).

    Raises
    ------
    TypeError, ValueError
        For an unknown knob, a malformed range, a float range of a whole-number knob,
        or an end that training refuses; the message names the knob.
    """
    schedule = plan.recipe.schedule
    if schedule != "step" and "learning_rate_decay" in space:
        raise ValueError(
            f"learning_rate_decay is the step schedule's; the recipe's {schedule} schedule does "
            "not use it: leave --learning-rate-decay out, or choose a recipe with the step "
            "schedule (lab)"
        )
    ends: list[dict[str, Any]] = [{}, {}]
    for name, knob in space.items():
        if name not in KNOBS:
            raise ValueError(f"unknown knob {name!r}; a search may turn {sorted(KNOBS)}")
        if not isinstance(knob, Range | Choices):
            raise TypeError(f"{name}: a knob is a Range or Choices, got {knob!r}")
        knob.check(name)
        if isinstance(knob, Range) and name in INTEGER_KNOBS and not knob.integer:
            raise TypeError(f"{name} takes whole numbers: give Range(..., integer=True)")
        values = knob.values if isinstance(knob, Choices) else _sampled_ends(knob)
        for value in values:
            try:
                plan.replace(**{name: value})
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name}: {value!r} is refused: {err}") from None
        ordered = sorted(values)
        ends[0][name], ends[1][name] = ordered[0], ordered[-1]
    for together in ends:  # all the small ends, then all the large ones (memory)
        plan.replace(**together)


def _sampled_ends(knob: Range) -> tuple[Any, Any]:
    """The ends of a range as Optuna samples them: ints for an integer range, else floats."""
    kind = int if knob.integer else float
    return kind(knob.low), kind(knob.high)


def distributions(space: SearchSpace) -> dict[str, Any]:
    """The space as Optuna distributions (fixed knobs left out: they are settings)."""
    from optuna import distributions as d

    found: dict[str, Any] = {}
    for name, knob in space.items():
        if isinstance(knob, Choices):
            if len(knob.values) > 1:
                found[name] = d.CategoricalDistribution(list(knob.values))
        elif knob.low != knob.high:
            if knob.integer:
                found[name] = d.IntDistribution(int(knob.low), int(knob.high), log=knob.log)
            else:
                found[name] = d.FloatDistribution(knob.low, knob.high, log=knob.log)
    return found


def fixed(space: SearchSpace) -> dict[str, Any]:
    """The knobs a space pins to one value."""
    values: dict[str, Any] = {}
    for name, knob in space.items():
        if isinstance(knob, Choices) and len(knob.values) == 1:
            values[name] = knob.values[0]
        elif isinstance(knob, Range) and knob.low == knob.high:
            values[name] = int(knob.low) if knob.integer else knob.low
    return values


def fingerprint(space: SearchSpace, settings: Mapping[str, Any]) -> str:
    """A short digest of the space and the fixed settings: a study searches one of each."""
    described = {
        name: {"choices": list(knob.values)} if isinstance(knob, Choices) else vars(knob)
        for name, knob in sorted(space.items())
    }
    text = json.dumps({"space": described, "settings": dict(settings)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
