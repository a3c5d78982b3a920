"""Old spellings and meanings kept working for one release, each with one warning that
says what to use instead, attributed to the caller's line rather than xpnet's."""

from __future__ import annotations

import sys
import warnings

from xpnet.errors import XpnetDeprecationWarning

#: The release in which the deprecated spellings stop working.
REMOVED_IN = "0.2"


def warn_renamed(old: str, new: str, *, stacklevel: int = 2, note: str = "") -> None:
    """Warn that ``old`` is deprecated in favour of ``new``.

    ``stacklevel`` counts as :func:`warnings.warn`'s does from the function that calls
    this one: 2 (the default) points at that function's caller.
    """
    warnings.warn(
        f"{old} is deprecated and stops working in xpnet {REMOVED_IN}: use {new}{note}",
        XpnetDeprecationWarning,
        stacklevel=stacklevel + 1,
    )


def warn_deprecated(message: str) -> None:
    """Warn with an :class:`~xpnet.errors.XpnetDeprecationWarning` attributed to the first
    frame outside xpnet (the user's call), however deep inside xpnet it is raised."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and _in_xpnet(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, XpnetDeprecationWarning, stacklevel=level + 1)


def _in_xpnet(module: str) -> bool:
    """Whether ``module`` is xpnet's (dataclasses' generated methods count as their class's)."""
    return module == "xpnet" or module.startswith("xpnet.")
