"""Files written whole or not at all, into directories checked before the work starts."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal, TypeGuard, overload

from xpnet._wording import setting


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

    Only regular files are written: an existing ``path`` that is (or is a symlink
    to) a directory, a device (``/dev/null``, a terminal), a FIFO (a pipe, as
    ``/dev/stdout`` often is) or a socket is refused before anything is written,
    never renamed over. A symlink to a regular file is followed: the file it names
    is replaced, the link kept.

    Raises
    ------
    OSError
        If ``path`` is not a regular file (as above), or if the file cannot be
        written, naming ``path`` (not the temporary file).
    """
    path = Path(path)
    target = _regular_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as err:
        raise _naming(err, path) from None
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
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
            if _regular_target(path) != target:  # replaced meanwhile: refused above if special
                raise FileExistsError(f"cannot write {path}: it changed while it was written")
            os.replace(tmp, target)
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


def _regular_target(path: Path) -> Path:
    """The file that writing ``path`` replaces: ``path``, or the file its symlinks name.

    Raises
    ------
    OSError
        If ``path`` exists and is not a regular file, or is a symlink whose target
        cannot be named (a ``/proc/self/fd`` link to a deleted file, say).
    """
    try:
        found = os.stat(path)  # follows symlinks, /dev/stdout's through /proc included
    except FileNotFoundError:
        found = None  # absent, or a symlink to nothing yet: its target is created
    except OSError as err:  # a symlink loop, a file where a directory should be
        raise _naming(err, path) from None
    if found is not None and not stat.S_ISREG(found.st_mode):
        kind = file_kind(found.st_mode)
        through = f" (through its symlink to {os.path.realpath(path)})" if path.is_symlink() else ""
        error = IsADirectoryError if stat.S_ISDIR(found.st_mode) else OSError
        raise error(
            f"cannot write {path}: it is a {kind}{through}, not a regular file; xpnet writes "
            "a file whole and renames it into place, which would replace it: choose a file path"
        )
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if found is not None and not (target.exists() and os.path.samestat(found, target.stat())):
        raise OSError(
            f"cannot write {path}: its symlink leads to no file xpnet can name; choose a file path"
        )
    return target


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` (from ``os.stat``) is, in words."""
    kinds = [(stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket")]  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "special file")


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


def check_writable_directory(path: Path, *, create: bool = True, files: Sequence[str] = ()) -> Path:
    """Check that files can be written into the directory ``path``, creating it if needed,
    and that none of the ``files`` to be written there is already something else than a
    regular file (a FIFO, a device, a directory, or a symlink to one).

    With ``create=False``, a directory that does not exist yet is left uncreated: its
    nearest existing parent is checked instead, where :func:`atomic_write` will create
    it with the first file (so a run that fails before writing leaves nothing behind).

    Raises
    ------
    OSError
        Saying whether ``path`` is a file, lies under a file, or is not writable, or
        which of ``files`` is not a regular file.
    """
    if path.exists() and not path.is_dir():
        kind = "file" if path.is_file() else file_kind(path.stat().st_mode)
        raise NotADirectoryError(f"output directory {path} is a {kind}; choose a directory")
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
            f"output directory {path} {why}; choose another ({setting('output_dir')})"
        ) from None
    for name in files:
        _regular_target(path / name)
    return path
