"""One-line progress bars on stderr: training iterations, and downloads.

On a terminal a bar redraws in place at most every ``interval`` seconds; elsewhere
(a CI log, a file) it prints a line every tenth of the way.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any


class ProgressBar:
    """A bar of ``total`` units; :meth:`update` draws it, :meth:`close` ends its line once."""

    width = 24

    def __init__(self, total: int, stream: IO[str] | None = None, interval: float = 0.25):
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self.start = self._last = time.perf_counter()
        self._next_line = 0
        self.closed = False

    def due(self, done: int) -> bool:
        """Whether drawing at ``done`` units is due (always at the end)."""
        now = time.perf_counter()
        due = now - self._last >= self.interval if self.tty else done >= self._next_line
        return due or done >= self.total

    def update(self, done: int, text: str) -> None:
        """Draw the bar at ``done`` units, followed by ``text``."""
        self._last = time.perf_counter()
        self._next_line = done + max(self.total // 10, 1)
        bar = "#" * (self.width * min(done, self.total) // self.total)
        line = f"[{bar:<{self.width}}] {text}"
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def speed(self, done: int) -> float:
        """Units per second since the bar started."""
        return done / max(time.perf_counter() - self.start, 1e-9)

    def close(self) -> None:
        """End the bar's line (once)."""
        if self.tty and not self.closed:
            self.stream.write("\n")
            self.stream.flush()
        self.closed = True


class TrainingProgress(ProgressBar):
    """``train(progress=...)``: iteration, loss, learning rate and speed.

    Reading the loss waits for the device, so it is read only when the bar is drawn.
    """

    def __call__(self, iteration: int, loss: Any, learning_rate: float) -> None:
        done = iteration + 1
        if not self.due(done):
            return
        self.update(
            done,
            f"{done:>{len(str(self.total))}}/{self.total} loss {number(float(loss))}  "
            f"lr {learning_rate:.2e}  {self.speed(done):,.0f} it/s",
        )


def number(value: float) -> str:
    """A loss, bounded in width: ``0.0117``, ``1.2e+190``, ``inf``, ``nan``."""
    if not math.isfinite(value) or abs(value) >= 1e5:
        return f"{value:.2g}" if math.isfinite(value) else str(value)
    return f"{value:.4f}"
