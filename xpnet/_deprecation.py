"""Old spellings and meanings kept working for one release, each with one warning that
says what to use instead, attributed to the caller's line rather than xpnet's."""

from __future__ import annotations

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
