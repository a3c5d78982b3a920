"""Files written whole or not at all, into directories checked before the work starts."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success, move it over ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it
    was (absent, or the old file whole). A replaced file keeps its permissions; a
    new one gets the usual mode (``0o666`` less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        old_mode = 0o666 & ~umask
    os.chmod(tmp, old_mode)  # mkstemp makes the file private
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable_directory(path: Path) -> Path:
    """Create the directory ``path`` if needed and check that files can be written into it.

    Raises
    ------
    OSError
        Saying whether ``path`` is a file, lies under a file, or is not writable.
    """
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output directory {path} is a file; choose a directory")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(
                f"output directory {path} lies under {parent}, which is a file"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except PermissionError:
        raise PermissionError(
            f"output directory {path} is not writable; choose another with --output-dir"
        ) from None
    return path
