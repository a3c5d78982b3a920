"""The search space: the lab's knobs, each a range or a set of choices around a recipe."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

#: The recipe fields a search may turn; their ranges are checked by building the
#: run's settings at each end (:func:`check_space`).
KNOBS = (
    "hidden_size", "learning_rate", "learning_rate_decay", "reg", "weight_decay", "momentum",
    "batch_size", "num_iters",
)  # fmt: skip
#: The knobs that take whole numbers: a Range of them must be ``integer=True``.
INTEGER_KNOBS = ("hidden_size", "batch_size", "num_iters")


def default_space(recipe: Recipe) -> dict[str, Range | Choices]:
    """Sensible ranges around a recipe's settings, as the lab's section 10 searches.

    hidden size from a quarter to twice the recipe's (log scale); learning rate and
    regularisation a decade either way (log scale): the L2 term ``reg``, and AdamW's
    weight decay (AdamW only; ``reg`` then only where the recipe has one); decay from
    0.9 to 1 (the step schedule only); momentum from 0 to 0.95 (SGD only); batch sizes
    half, equal or twice the recipe's; iterations from half to the recipe's.
    """
    space: dict[str, Range | Choices] = {
        "hidden_size": Range(max(recipe.hidden_size // 4, 8), recipe.hidden_size * 2, True, True),
        "learning_rate": Range(recipe.learning_rate / 10, recipe.learning_rate * 10, log=True),
    }
    if recipe.optimizer != "adamw" or recipe.reg > 0:
        space["reg"] = _decade_around(recipe.reg)
    if recipe.optimizer == "adamw":
        space["weight_decay"] = _decade_around(recipe.weight_decay)
    space |= {
        "batch_size": Choices(
            tuple(
                sorted({max(recipe.batch_size // 2, 1), recipe.batch_size, recipe.batch_size * 2})
            )
        ),
        "num_iters": Range(max(recipe.num_iters // 2, 1), recipe.num_iters, log=True, integer=True),
    }
    if recipe.optimizer == "sgd":
        space["momentum"] = Range(0.0, 0.95)
    if recipe.schedule == "step":
        space["learning_rate_decay"] = Range(0.9, 1.0)
    return space


def searched_space(recipe: Recipe, space: SearchSpace | None) -> dict[str, Range | Choices]:
    """The knobs a search turns: :func:`default_space`'s, with those of ``space`` instead."""
    return {**default_space(recipe), **(space or {})}


def _decade_around(value: float) -> Range:
    """A decade either way of ``value`` (of 1e-7 for 0), on a log scale."""
    centre = max(value, 1e-7)
    return Range(centre / 10, centre * 10, log=True)


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
