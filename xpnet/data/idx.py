"""The IDX file format of MNIST: a small header, then the raw array.

Layout (big-endian): two zero bytes, a type code (0x08 for unsigned bytes), the
number of dimensions ``ndim``, then ``ndim`` 32-bit sizes, then the data in C order.
Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from xpnet.data._files import open_payload
from xpnet.errors import DataError

__all__ = ["DataError", "read_idx"]

# IDX type codes and the NumPy dtypes they stand for (big-endian).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate cannot compress by more than about 1032:1; a larger claim is a lie.
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike[str], *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a NumPy array.

    The header is checked before anything large is allocated: the declared size
    must agree with the file's size.

    Parameters
    ----------
    path : path-like
        The file; gzip-compressed if its name ends in ``.gz``.
    expect_ndim : int, optional
        Raise unless the file declares this many dimensions.

    Returns
    -------
    numpy.ndarray
        With the declared shape and a native-endian dtype.

    Raises
    ------
    DataError
        If the file is missing, truncated, corrupt, or not an IDX file.
    """
    path = Path(path)
    try:
        size_on_disk = path.stat().st_size
        with open_payload(path) as stream:
            return _read(stream, path, size_on_disk, expect_ndim)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: not a readable gzip or IDX file ({err})") from None


def _read(stream: IO[bytes], path: Path, size_on_disk: int, expect_ndim: int | None) -> np.ndarray:
    magic = _read_exactly(stream, 4, path, "the 4-byte IDX magic number")
    zero, type_code, ndim = struct.unpack(">HBB", magic)
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{magic.hex()}; expected 0x0000 then a type code "
            f"({', '.join(f'0x{c:02x}' for c in _DTYPES)}) and the number of dimensions"
        )
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim}")
    shape = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path, "the dimensions"))
    dtype = np.dtype(_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize

    # NumPy refuses a shape whose nonzero sides multiply past its largest array, even with a
    # zero side (no data at all): say so as for any other bad header
    if math.prod(side for side in shape if side) * dtype.itemsize > np.iinfo(np.intp).max:
        raise DataError(f"{path}: header declares shape {shape}, larger than any array: corrupt")
    compressed = path.suffix == ".gz"
    limit = size_on_disk * _MAX_GZIP_RATIO if compressed else size_on_disk - 4 - 4 * ndim
    if expected > limit:
        raise DataError(
            f"{path}: header declares shape {shape} ({expected:,} bytes of data), but the "
            f"file is only {size_on_disk:,} bytes: truncated or corrupt"
        )
    payload = _read_exactly(stream, expected, path, f"{expected:,} bytes of data for {shape}")
    if stream.read(1):
        raise DataError(f"{path}: more data than the header's shape {shape} declares")
    return np.frombuffer(payload, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(shape)


def _read_exactly(stream: IO[bytes], n: int, path: Path, what: str) -> bytes:
    buffer = io.BytesIO()
    while buffer.tell() < n:
        chunk = stream.read(min(_CHUNK, n - buffer.tell()))
        if not chunk:
            raise DataError(
                f"{path}: file ends after {buffer.tell():,} of {n:,} bytes of {what}: truncated"
            )
        buffer.write(chunk)
    return buffer.getvalue()
