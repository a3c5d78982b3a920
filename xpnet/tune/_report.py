"""A search's record for people: ``trials.csv``, a table of the best trials, two plots."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xpnet._atomic import atomic_write
from xpnet.tune._space import Choices, Range, SearchSpace

_COLUMNS = ("number", "state", "value", "seconds", "worker", "error", "resumed_at")


#: The files :func:`write` writes into the output directory.
FILES = ("trials.csv", "trials.png", "hyperparameters.png")


def write(out: Path, rows: Sequence[dict[str, Any]], space: SearchSpace) -> list[Path]:
    """Write ``trials.csv``, ``trials.png`` and ``hyperparameters.png``; return their paths.

    Without matplotlib the plots are left out, with a note on stderr.
    """
    knobs = sorted({key for row in rows for key in row} - set(_COLUMNS))
    written = [out / "trials.csv"]
    with atomic_write(written[0], "w") as f:
        writer = csv.DictWriter(f, fieldnames=[*_COLUMNS, *knobs], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    from xpnet import plots

    try:
        figures = {
            "trials.png": plots.plot_trials(rows),
            "hyperparameters.png": plots.plot_hyperparameters(rows, _log_scaled(space, knobs)),
        }
    except ImportError as err:
        print(f"no plots: {err}", file=sys.stderr)
        return written
    for name, figure in figures.items():
        plots.save_figure(figure, out / name)
        written.append(out / name)
    return written


def _log_scaled(space: SearchSpace, knobs: Sequence[str]) -> dict[str, bool]:
    scaled = {}
    for name in knobs:
        knob = space.get(name)
        if isinstance(knob, Choices) and len(knob.values) <= 1:
            continue  # a fixed knob has no axis
        scaled[name] = isinstance(knob, Range) and knob.log
    return scaled


def best_table(rows: Sequence[dict[str, Any]], count: int = 5) -> str:
    """The ``count`` best finished trials as a text table, best first."""
    done = sorted(
        (row for row in rows if row["state"] == "COMPLETE"), key=lambda r: r["value"], reverse=True
    )[:count]
    knobs = sorted({key for row in done for key in row} - set(_COLUMNS))
    header = ["trial", "val acc", *knobs, "seconds"]
    lines = [[str(row["number"]), f"{row['value']:.4f}", *(_cell(row.get(k)) for k in knobs),
              _cell(row.get("seconds"))] for row in done]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *lines]
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
