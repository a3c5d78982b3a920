"""Opening a data file as its payload: decompressed when its name ends in ``.gz``."""

from __future__ import annotations

import contextlib
import gzip
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast


@contextlib.contextmanager
def open_payload(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading its payload: through gzip if it is ``.gz``, else as it is.

    Errors of a corrupt gzip stream surface while reading, as ``OSError``,
    ``EOFError`` or ``zlib.error``.
    """
    with open(path, "rb") as raw:
        if Path(path).suffix == ".gz":
            with gzip.GzipFile(fileobj=raw) as stream:
                yield cast(IO[bytes], stream)
        else:
            yield raw
