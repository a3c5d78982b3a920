"""Deprecation warnings that point at the caller's line, not at xpnet's."""

from __future__ import annotations

import sys
import warnings


def warn_deprecated(message: str) -> None:
    """Warn with a :class:`DeprecationWarning` attributed to the first frame outside xpnet
    (the user's call), however deep inside xpnet it is raised."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and _in_xpnet(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level + 1)


def _in_xpnet(module: str) -> bool:
    """Whether ``module`` is xpnet's (dataclasses' generated methods count as their class's)."""
    return module == "xpnet" or module.startswith("xpnet.")
