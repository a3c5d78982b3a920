"""Files written whole or not at all, into directories checked before the work starts."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, TypeGuard, overload


@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["wb"] = "wb"
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_write(
    path: str | os.PathLike[str], mode: Literal["w"]
) -> contextlib.AbstractContextManager[IO[str]]: ...
@contextlib.contextmanager  # IO[Any]: bytes or text by mode, as the overloads above say
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``, in binary (``"wb"``) or text (``"w"``)
    mode; on success, move it over ``path``.

    If the block raises, or SIGTERM arrives meanwhile, the temporary file is removed
    and ``path`` is left as it was (absent, or the old file whole); SIGTERM then
    goes on to end the process as it would have. A replaced file keeps its
    permissions; a new one gets the usual mode (``0o666`` less the umask).

    Raises
    ------
    OSError
        If the file cannot be written, naming ``path`` (not the temporary file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as err:
        raise _naming(err, path) from None
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        old_mode = 0o666 & ~umask
    try:
        with _terminate_as_exception():
            os.chmod(tmp, old_mode)  # mkstemp makes the file private
            with os.fdopen(fd, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except _Terminated:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        signal.raise_signal(signal.SIGTERM)  # the previous handler: by default, the end
        raise
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _about_the_file(err, tmp):
            raise _naming(err, path) from None
        raise


class _Terminated(BaseException):
    """SIGTERM arrived while a file was being written."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` for a block, where it would otherwise end
    the process at once (its default); other handlers and other threads are left alone."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _about_the_file(err: BaseException, tmp: str) -> TypeGuard[OSError]:
    """Whether an error in the block is the file system's about the file being written
    (a full or read-only disk), not the caller's own (a failed download, say)."""
    return (
        type(err).__module__ == "builtins"
        and isinstance(err, OSError)
        and err.errno is not None
        and err.filename in (tmp, None)
    )


def _naming(err: OSError, path: Path) -> OSError:
    """The same error, saying which file and directory could not be written."""
    why = err.strerror or str(err)
    return type(err)(err.errno, f"cannot write {path.name} into {path.parent}: {why}", str(path))


def check_writable_directory(path: Path, *, create: bool = True) -> Path:
    """Check that files can be written into the directory ``path``, creating it if needed.

    With ``create=False``, a directory that does not exist yet is left uncreated: its
    nearest existing parent is checked instead, where :func:`atomic_write` will create
    it with the first file (so a run that fails before writing leaves nothing behind).

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
    probed = path
    if not create:
        probed = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=probed):
            pass
    except PermissionError:
        why = "is not writable" if probed == path else f"cannot be made: {probed} is not writable"
        raise PermissionError(
            f"output directory {path} {why}; choose another with --output-dir"
        ) from None
    return path
