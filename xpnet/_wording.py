"""How a message names a setting: as an argument to a Python caller (``data_dir``,
``overwrite=True``), as an option on the command line (``--data-dir``, ``--overwrite``).

:func:`xpnet.cli.main` runs its command inside :func:`command_line`; everything else is
a Python caller.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["command_line", "on_command_line", "setting"]

_ON_COMMAND_LINE: ContextVar[bool] = ContextVar("xpnet_on_command_line", default=False)
_NO_VALUE = object()


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within this block, messages name settings as the command line's options."""
    token = _ON_COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _ON_COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    """Whether the caller is the ``xpnet`` command (within :func:`command_line`)."""
    return _ON_COMMAND_LINE.get()


def setting(name: str, value: object = _NO_VALUE) -> str:
    """The setting ``name`` (a Python argument's name), with ``value`` if given, as the
    caller writes it.

    From Python: ``data_dir``, ``momentum=0``, ``schedule='step'``, ``overwrite=True``.
    On the command line: ``--data-dir``, ``--momentum 0``, ``--schedule step``,
    ``--overwrite`` (``--no-NAME`` for False), the value quoted as a shell needs it
    (``--host ''``).
    """
    if not on_command_line():
        return name if value is _NO_VALUE else f"{name}={value!r}"
    option = "--" + name.replace("_", "-")
    if value is _NO_VALUE or value is True:
        return option
    if value is False:
        return f"--no-{option[2:]}"
    return f"{option} {shlex.quote(str(value))}"
