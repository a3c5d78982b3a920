"""The archive layer of model files: a zip of ``.npy`` arrays, read without trusting it.

Only a regular file is opened (a FIFO, a device, a socket or a symlink to one is
refused before any read, so nothing blocks or reads for ever). Each member is stored
or deflated, as ``numpy.savez`` and ``numpy.savez_compressed`` write it, not
encrypted, and its ``.npy`` header is read and checked first: no pickled objects, a
header of bounded length, and exactly as many bytes after it as its shape and dtype
take (no fewer, no trailing bytes). The caller then checks the header's shape and
dtype before any data is read, so a member of the wrong shape costs a few hundred
bytes of reading, whatever its size. Every zip, decompression or I/O error is a
:class:`xpnet.errors.ModelFileError` naming the file and the member.
"""

from __future__ import annotations

import contextlib
import io
import lzma
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple

import numpy as np

from xpnet._atomic import file_kind
from xpnet.errors import ModelFileError

__all__ = ["NpyHeader", "NpzArchive", "open_npz", "refuse_special_file"]

#: Deflate cannot compress by more than about 1032:1; a larger claim is a lie.
MAX_COMPRESSION_RATIO = 1100
#: numpy's own bound on a ``.npy`` header's text (``max_header_size``).
_MAX_HEADER_BYTES = 10_000
#: Data is read in chunks of this size into the array's own buffer: no second copy.
_CHUNK = 1 << 20
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ENCRYPTED, _PATCHED, _STRONG_ENCRYPTION = 0x1, 0x20, 0x40
# Whatever a damaged archive or stream raises while it is read (zipfile's encrypted
# flag is a RuntimeError, an unknown compression or zip version a NotImplementedError).
_READ_ERRORS = (
    OSError, EOFError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
    RuntimeError, NotImplementedError, ValueError, struct.error,
)  # fmt: skip

Path = str | os.PathLike[str]


class NpyHeader(NamedTuple):
    """What a member's ``.npy`` header declares: ``nbytes`` is the data's size."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    nbytes: int


def refuse_special_file(path: Path, mode: int) -> None:
    """Raise :class:`ModelFileError` unless ``mode`` (from ``os.stat``) is a regular file's."""
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{path}: is a directory, not a model file")
    raise ModelFileError(
        f"{path}: is a {file_kind(mode)}, not a regular file; xpnet reads model files only "
        "from regular files (copy the model into a file first)"
    )


@contextlib.contextmanager
def open_npz(path: Path) -> Iterator[NpzArchive]:
    """Open ``path`` as an ``.npz`` archive, after checking that it is a regular file.

    Raises
    ------
    ModelFileError
        If ``path`` is missing, not a regular file, not a zip archive, or unreadable.
    """
    try:
        refuse_special_file(path, os.stat(path).st_mode)
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it
        # still returns at once, and fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except OSError as err:
        raise ModelFileError(f"{path}: cannot be opened ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as file:
        try:
            refuse_special_file(path, os.fstat(fd).st_mode)
            if not zipfile.is_zipfile(file):
                raise ModelFileError(
                    f"{path}: not an .npz model file (a zip archive of .npy arrays); a model "
                    "file is written by `xpnet train` or TwoLayerNet.save"
                )
            archive = zipfile.ZipFile(file)
        except ModelFileError:
            raise
        except _READ_ERRORS as err:
            raise ModelFileError(f"{path}: not a readable .npz file ({err})") from None
        with archive:
            yield NpzArchive(path, archive, os.fstat(fd).st_size)


class NpzArchive:
    """An open ``.npz`` archive whose members are read header first.

    Attributes
    ----------
    members : dict of str to zipfile.ZipInfo
        The members by array name (the file name less ``.npy``).
    size_on_disk : int
        The archive's size in bytes.
    """

    def __init__(self, path: Path, archive: zipfile.ZipFile, size_on_disk: int):
        self.path, self._archive, self.size_on_disk = path, archive, size_on_disk
        infos = archive.infolist()
        wrong = [info.filename for info in infos if not info.filename.endswith(".npy")]
        if wrong:
            raise ModelFileError(f"{path}: members {wrong[:5]} are not .npy arrays")
        self.members = {info.filename[: -len(".npy")]: info for info in infos}
        if len(self.members) != len(infos):
            raise ModelFileError(f"{path}: holds a member twice: corrupt")

    def read(self, name: str, check: Callable[[NpyHeader], None]) -> np.ndarray:
        """The array ``name``, in native byte order, writable.

        ``check`` receives the member's header before any of its data is read and
        raises (a :class:`ModelFileError`) if the array is not one the caller takes.
        """
        info = self.members[name]
        where = f"{self.path}: {name}"
        self._check_entry(info, where)
        try:
            with self._archive.open(info) as stream:
                header = _read_header(stream, info, where)
                check(header)
                array = _read_data(stream, header, where)
        except ModelFileError:
            raise
        except _READ_ERRORS as err:
            raise ModelFileError(f"{where} cannot be read: {err}: corrupt") from None
        return (
            array.astype(array.dtype.newbyteorder("=")) if array.dtype.byteorder == ">" else array
        )

    def _check_entry(self, info: zipfile.ZipInfo, where: str) -> None:
        """Refuse what zipfile would fail on, or read unbounded, before opening the member."""
        if info.flag_bits & (_ENCRYPTED | _STRONG_ENCRYPTION):
            raise ModelFileError(f"{where} is encrypted; xpnet's model files never are: corrupt")
        if info.flag_bits & _PATCHED or info.compress_type not in _METHODS:
            raise ModelFileError(
                f"{where} is compressed with method {info.compress_type}; xpnet reads "
                "members stored or deflated, as numpy.savez and savez_compressed write them"
            )
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and info.compress_size != info.file_size) or (
            info.file_size > max(info.compress_size, 1) * MAX_COMPRESSION_RATIO
        ):
            raise ModelFileError(
                f"{where} claims {info.file_size:,} bytes from {info.compress_size:,} "
                f"{_METHODS[info.compress_type]}: corrupt"
            )


def _read_header(stream: IO[bytes], info: zipfile.ZipInfo, where: str) -> NpyHeader:
    """The member's ``.npy`` header, checked against the member's size."""
    magic = _read_exactly(stream, 8, where)
    if magic[:6] != b"\x93NUMPY" or magic[6:] not in (b"\x01\x00", b"\x02\x00"):
        raise ModelFileError(f"{where} is not a .npy array of version 1.0 or 2.0")
    length_format = "<H" if magic[6] == 1 else "<I"
    length_bytes = _read_exactly(stream, struct.calcsize(length_format), where)
    (length,) = struct.unpack(length_format, length_bytes)
    if length > _MAX_HEADER_BYTES:
        raise ModelFileError(f"{where} has a {length:,}-byte .npy header: corrupt")
    text = io.BytesIO(length_bytes + _read_exactly(stream, length, where))
    read = (
        np.lib.format.read_array_header_1_0
        if magic[6] == 1
        else np.lib.format.read_array_header_2_0
    )
    try:
        shape, fortran_order, dtype = read(text)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelFileError(f"{where} is not a valid .npy array ({reason})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{where} holds pickled Python objects, which xpnet never loads")
    if any(extent < 0 for extent in shape):
        raise ModelFileError(f"{where} declares a negative shape {shape}: corrupt")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    available = info.file_size - len(magic) - len(length_bytes) - length
    if nbytes > available:
        raise ModelFileError(
            f"{where} declares shape {shape} of {dtype} ({nbytes:,} bytes), but holds only "
            f"{max(available, 0):,} bytes: truncated or corrupt"
        )
    if nbytes < available:
        raise ModelFileError(
            f"{where} has {available - nbytes:,} bytes after its data (shape {shape} of "
            f"{dtype}, {nbytes:,} bytes): corrupt, or not written by numpy"
        )
    return NpyHeader(tuple(shape), dtype, fortran_order, nbytes)


def _read_data(stream: IO[bytes], header: NpyHeader, where: str) -> np.ndarray:
    """The member's data, read in chunks into the array's own buffer."""
    buffer = bytearray(header.nbytes)
    view = memoryview(buffer)
    position = 0
    while position < header.nbytes:
        chunk = stream.read(min(_CHUNK, header.nbytes - position))
        if not chunk:
            raise ModelFileError(
                f"{where} ends after {position:,} of {header.nbytes:,} bytes: truncated"
            )
        view[position : position + len(chunk)] = chunk
        position += len(chunk)
    shape, dtype = header.shape, header.dtype
    array = np.frombuffer(buffer, dtype=dtype)  # writable: training updates in place
    return array.reshape(shape[::-1]).T if header.fortran_order else array.reshape(shape)


def _read_exactly(stream: IO[bytes], n: int, where: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ModelFileError(f"{where} ends after {len(data):,} of {n:,} bytes: truncated")
    return data
