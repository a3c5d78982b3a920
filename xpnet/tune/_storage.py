"""Where a study's trials are recorded: a journal file by default, or any Optuna storage URL."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from xpnet._atomic import atomic_write

__all__ = ["open_storage", "storage_spec"]

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def storage_spec(storage: str | os.PathLike[str] | None, output_dir: Path) -> str:
    """The storage as a string a worker process can open too.

    None means the journal file ``study.log`` in ``output_dir``; a path (or
    ``journal:PATH``) a journal file; ``sqlite:///...``, ``postgresql://...`` or
    ``mysql://...`` a database.

    Raises
    ------
    ValueError
        For a URL of a kind Optuna cannot store in.
    """
    if storage is None:
        return f"journal:{(output_dir / 'study.log').resolve()}"
    text = os.fspath(storage)
    scheme, colon, rest = text.partition(":")
    if not colon or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return f"journal:{Path(text).resolve()}"
    base = scheme.split("+", 1)[0]
    if scheme == "journal":
        return f"journal:{Path(rest).resolve()}"
    if base in _RDB_SCHEMES and rest.startswith("//"):
        return text
    raise ValueError(
        f"storage {text!r} is neither a file path nor a database URL (sqlite:///study.db, "
        "postgresql://user@host/db, mysql://user@host/db)"
    )


def _check_journal(path: Path, repair: bool) -> None:
    """Refuse a file that is not a whole Optuna journal, before Optuna appends to it.

    With ``repair`` (the search's driver) every line is read: a last record cut off (a
    crash or a full disk mid-write) is moved into ``<name>.cut-<time>`` beside the
    journal, so that new records start on a line of their own; any other line that is
    not a record is refused, the file named. Without (a worker), the first line only.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    if not repair:  # a worker: the driver has checked the whole file; its first line will do
        with open(path, "rb") as f:
            if not _is_record(f.readline(1 << 16).rstrip(b"\n")):
                raise ValueError(f"{path} is not a study storage (an Optuna journal file)")
        return
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    tail = lines.pop()  # what follows the last newline: empty in a whole journal
    for number, line in enumerate(lines, start=1):
        if not _is_record(line):
            raise ValueError(
                f"{path} is not a study storage (an Optuna journal file): line {number} is not "
                "a journal record"
                + (
                    ""
                    if number == 1
                    else f"; the {number - 1} records before it are intact: restore the file "
                    f"from a copy, or keep only its first {number - 1} lines "
                    f"(head -n {number - 1}) to resume from them"
                )
                + "; the file is left as it was"
            )
    if not tail:
        return
    if not lines and not tail.lstrip().startswith(b"{"):
        raise ValueError(
            f"{path} is not a study storage (an Optuna journal file); it is left as it was"
        )
    _set_aside_tail(path, len(tail))


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def _set_aside_tail(path: Path, size: int) -> None:
    """Move the last ``size`` bytes of ``path`` (a record cut off) into a file beside it."""
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    with get_lock_file(JournalFileSymlinkLock(str(path))), open(path, "r+b") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(end - size)
        tail = f.read()
        if b"\n" in tail:  # another run finished the record meanwhile
            return
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = path.with_name(f"{path.name}.cut-{stamp}")
        with atomic_write(aside) as kept:
            kept.write(tail)
        f.truncate(end - size)
        f.flush()
        os.fsync(f.fileno())
    print(
        f"note: {path} ended in a record cut off mid-write ({size} bytes, by a crash or a "
        f"full disk); it was moved to {aside}, and the study goes on from the records before it",
        file=sys.stderr,
    )


def open_storage(spec: str, create: bool = False) -> Any:
    """The Optuna storage for a :func:`storage_spec` string.

    ``create`` makes a journal file's directory where it is missing (the driver's
    part); a worker only opens what exists.

    Raises
    ------
    ValueError
        If the storage cannot be opened or read; the message says which and why.

    Optuna's own messages below warnings ("A new study created ...", each trial's
    result) are turned off: the search reports its trials itself.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    try:
        if spec.startswith("journal:"):
            path = Path(spec[len("journal:") :])
            if path.exists() and not path.is_file():
                raise ValueError(f"storage {path} is not a file")
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.is_file():
                raise ValueError(f"storage {path} does not exist here")
            _check_journal(path, repair=create)
            return JournalStorage(JournalFileBackend(str(path)))
        return optuna.storages.RDBStorage(spec, heartbeat_interval=None)
    except ValueError:
        raise
    except Exception as err:  # Optuna and SQLAlchemy raise many kinds for a bad store
        raise ValueError(
            f"cannot open the study storage {spec}: {type(err).__name__}: {err}"
        ) from None
