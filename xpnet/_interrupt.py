"""Ctrl-C (and SIGTERM) during training: finish the current step, then stop."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interruption:
    """Whether a deferred signal arrived: ``interrupted()`` is True once one has, and
    :attr:`signal` says which (None before)."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def __call__(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def deferred_interrupt(terminate: bool = False) -> Iterator[Interruption]:
    """Turn the first SIGINT (and, with ``terminate``, SIGTERM) into a flag that the
    caller checks between steps.

    Yields an :class:`Interruption`, which tells whether one came and which. A second
    Ctrl-C raises KeyboardInterrupt at once; a second SIGTERM ends the process as
    SIGTERM would have. Outside the main thread, where Python cannot install signal
    handlers, the signals are left alone.
    """
    interruption = Interruption()
    if threading.current_thread() is not threading.main_thread():
        yield interruption
        return

    wanted = (signal.SIGINT, signal.SIGTERM) if terminate else (signal.SIGINT,)
    previous = {signum: signal.getsignal(signum) for signum in wanted}

    def handler(signum: int, frame: FrameType | None) -> None:
        if interruption.signal is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, previous[signal.Signals(signum)])
            signal.raise_signal(signum)
            return
        interruption.signal = signal.Signals(signum)

    for signum in wanted:
        signal.signal(signum, handler)
    try:
        yield interruption
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
