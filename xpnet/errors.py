"""The exceptions xpnet raises for bad files and failed training."""

from __future__ import annotations

__all__ = ["DataError", "ModelFileError"]


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not what was expected."""


class ModelFileError(DataError):
    """A model file is unreadable, incomplete, inconsistent, or from a newer xpnet."""
