"""A one-line progress bar for training: iteration, loss, learning rate, speed."""

from __future__ import annotations

import sys
import time
from typing import IO, Any


class ProgressBar:
    """Called after each iteration; redraws at most every ``interval`` seconds.

    Reading the loss waits for the device, so it is read only when the bar is
    drawn. On a terminal the bar redraws in place; elsewhere (a CI log) it
    prints a line every tenth of the run.
    """

    def __init__(self, total: int, stream: IO[str] | None = None, interval: float = 0.25):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval
        self.start = self._last = time.perf_counter()
        self._next_line = 0
        self.closed = False

    def __call__(self, iteration: int, loss: Any, learning_rate: float) -> None:
        done = iteration + 1
        now = time.perf_counter()
        due = now - self._last >= self.interval if self.tty else done >= self._next_line
        if not (due or done == self.total):
            return
        self._last = now
        self._next_line = done + max(self.total // 10, 1)
        rate = done / max(now - self.start, 1e-9)
        width = 24
        bar = "#" * (width * done // self.total)
        line = (
            f"[{bar:<{width}}] {done:>{len(str(self.total))}}/{self.total} "
            f"loss {float(loss):.4f}  lr {learning_rate:.2e}  {rate:,.0f} it/s"
        )
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (once)."""
        if self.tty and not self.closed:
            self.stream.write("\n")
            self.stream.flush()
        self.closed = True
