"""The search space: the lab's knobs, each a range or a set of choices around a recipe.

The knobs, and the ranges searched unless told otherwise, are the hyperparameters'
table's (:class:`xpnet.hyperparameters.Search`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xpnet._wording import on_command_line, setting
from xpnet.hyperparameters import Row, rows
from xpnet.recipes import Recipe
from xpnet.training._many import check_group_memory

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from xpnet.pipeline import RunPlan


@dataclass(frozen=True)
class Range:
    """Values from ``low`` to ``high``; on a log scale when ``log``; integers when ``integer``.

    ``low == high`` fixes the knob.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class Choices:
    """One of a few values (a single one fixes the knob)."""

    values: tuple[Any, ...]


SearchSpace = Mapping[str, Range | Choices]

#: The hyperparameters a search may turn (those the table gives a search), by name.
KNOBS = {row.name: row for row in rows() if row.search is not None}


def default_space(recipe: Recipe) -> dict[str, Range | Choices]:
    """The ranges the hyperparameters' table gives around a recipe's values.

    As the lab's section 10 searches: hidden size from a quarter to twice the recipe's
    (log scale); learning rate a decade either way (log scale); the L2 term ``reg``
    likewise (except for an AdamW recipe without one), and AdamW's weight decay (AdamW
    only); batch sizes half, equal or twice the recipe's; iterations from half to the
    recipe's; momentum from 0 to 0.95 (SGD only); decay from 0.9 to 1 (the step
    schedule only); dropout 0.2 either way of the recipe's (where it has dropout).
    """
    space: dict[str, Range | Choices] = {}
    for row in rows():
        if row.search is not None:
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
    """The knobs a search turns: :func:`default_space`'s, with those of ``space`` instead,
    their NumPy numbers (``np.float64``, ``np.int64``) as Python's."""
    given = {name: _plain(searched) for name, searched in (space or {}).items()}
    return {**default_space(recipe), **given}


def _plain(searched: object) -> Any:
    """A knob with NumPy scalars as Python numbers, as Optuna and JSON take them; anything
    else as it is (Any: :func:`check_space` judges what a caller gave)."""
    if isinstance(searched, Range):
        return dataclasses.replace(searched, low=_number(searched.low), high=_number(searched.high))
    if isinstance(searched, Choices) and isinstance(searched.values, tuple | list):
        return Choices(tuple(_number(value) for value in searched.values))
    return searched


def _number(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def check_space(space: SearchSpace, plan: RunPlan, together: int = 1) -> None:
    """Check every knob of ``space`` as training will see it, before anything starts.

    Each knob's ends (each choice) must make valid settings for ``plan``'s run, alone
    and with every other knob at the same end: the same checks as ``xpnet train``'s
    (types, ranges, momentum only for SGD, memory for the largest sizes), and, for
    ``together`` trials trained together, memory for that many at the largest sizes.

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
            f"not use it: leave {setting('learning_rate_decay')} out"
            f"{'' if on_command_line() else ' of space'}, or choose a recipe with the step "
            "schedule (lab)"
        )
    ends: list[dict[str, Any]] = [{}, {}]
    for name, searched in space.items():
        values = _ends(name, searched)
        for value in values:
            try:
                plan.replace(**{name: value})
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name}: {value!r} is refused: {err}") from None
        ends[0][name], ends[1][name] = min(values), max(values)
    for same_end in ends:  # all the small ends, then all the large ones (memory)
        largest = plan.replace(**same_end)
    if together > 1:
        check_group_memory([largest.settings] * together)


def _ends(name: str, searched: Any) -> tuple[Any, ...]:
    """A knob's choices, or its range's ends as Optuna samples them (ints for an integer
    range); TypeError or ValueError for a malformed knob."""
    if name not in KNOBS:
        raise ValueError(f"unknown knob {name!r}; a search may turn {sorted(KNOBS)}")
    if isinstance(searched, Choices):
        if not searched.values:
            raise ValueError(f"{name}: give at least one choice")
        return searched.values
    if not isinstance(searched, Range):
        raise TypeError(f"{name}: a knob is a Range or Choices, got {searched!r}")
    low, high = searched.low, searched.high
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, int | float) or not math.isfinite(end):
            raise ValueError(f"{name}: range bounds must be finite numbers, got {end!r}")
    if low > high:
        raise ValueError(f"{name}: low {low:g} is above high {high:g}")
    if searched.log and low <= 0:
        raise ValueError(f"{name}: a log-scale range must be positive, got low {low:g}")
    if searched.integer and (low != int(low) or high != int(high)):
        raise ValueError(f"{name}: an integer range needs integer bounds")
    if KNOBS[name].kind is int and not searched.integer:
        raise TypeError(f"{name} takes whole numbers: give Range(..., integer=True)")
    return (int(low), int(high)) if searched.integer else (float(low), float(high))


def distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """The space as Optuna distributions (fixed knobs left out: they are settings)."""
    from optuna import distributions as d

    found: dict[str, BaseDistribution] = {}
    for name, searched in space.items():
        if isinstance(searched, Choices):
            if len(searched.values) > 1:
                found[name] = d.CategoricalDistribution(list(searched.values))
        elif searched.low != searched.high and searched.integer:
            found[name] = d.IntDistribution(int(searched.low), int(searched.high), log=searched.log)
        elif searched.low != searched.high:
            found[name] = d.FloatDistribution(searched.low, searched.high, log=searched.log)
    return found


def fixed(space: SearchSpace) -> dict[str, Any]:
    """The knobs a space pins to one value."""
    values: dict[str, Any] = {}
    for name, searched in space.items():
        if isinstance(searched, Choices) and len(searched.values) == 1:
            values[name] = searched.values[0]
        elif isinstance(searched, Range) and searched.low == searched.high:
            values[name] = int(searched.low) if searched.integer else searched.low
    return values


def identity(space: SearchSpace, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a search, as plain (JSON) data: its space, knob by knob, and the
    settings it fixes. A study records it; a search resumes only a study of the same."""
    described = {
        name: {"choices": list(k.values)} if isinstance(k, Choices) else dataclasses.asdict(k)
        for name, k in sorted(space.items())
    }
    plain: dict[str, Any] = json.loads(
        json.dumps({"space": described, "settings": dict(settings)}, sort_keys=True)
    )
    return plain


def differences(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What differs between two :func:`identity`'s, a phrase each:
    ``"seed: 0 in the study, 1 now"``; a recipe's fields one by one."""
    found = []
    for section in ("settings", "space"):
        old, new = recorded.get(section) or {}, wanted.get(section) or {}
        for key in sorted(set(old) | set(new)):
            a, b = old.get(key), new.get(key)
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict) and section == "settings":
                found += [f"{key}.{change}" for change in differences(
                    {"settings": a}, {"settings": b})]  # fmt: skip
            else:
                found.append(f"{key}: {_shown(a)} in the study, {_shown(b)} now")
    return found


def _shown(value: Any) -> str:
    """A setting or a knob as :func:`differences` writes it."""
    if value is None:
        return "none"
    if isinstance(value, dict) and "choices" in value:
        return "one of " + ", ".join(map(str, value["choices"]))
    if isinstance(value, dict) and {"low", "high"} <= value.keys():
        scale = "log" if value.get("log") else "linear"
        return f"{value['low']:g} to {value['high']:g} ({scale})"
    return str(value)
