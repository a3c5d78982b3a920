"""Where a study's trials are recorded: a journal file by default, or any Optuna storage URL."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def _check_journal(path: Path) -> None:
    """Refuse a file that is not an Optuna journal, before Optuna appends to it."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        first = f.readline(1 << 16)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise ValueError(
            f"{path} is not a study storage (an Optuna journal file); it is left as it was"
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
            _check_journal(path)
            return JournalStorage(JournalFileBackend(str(path)))
        return optuna.storages.RDBStorage(spec, heartbeat_interval=None)
    except ValueError:
        raise
    except Exception as err:  # Optuna and SQLAlchemy raise many kinds for a bad store
        raise ValueError(
            f"cannot open the study storage {spec}: {type(err).__name__}: {err}"
        ) from None
