"""Downloading data files: from a list of mirrors, verified, written atomically."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from xpnet._atomic import atomic_write
from xpnet._progress import progress_bar
from xpnet.data._files import open_payload
from xpnet.errors import DataError

__all__ = ["download", "payload_sha256"]

_CHUNK = 1 << 16


def payload_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's payload: its uncompressed bytes if it is ``.gz``.

    Raises
    ------
    DataError
        If a ``.gz`` file is not valid gzip.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with open_payload(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from None
    return digest.hexdigest()


def download(
    name: str,
    mirrors: Sequence[str],
    destination: str | os.PathLike[str],
    sha256: str,
    *,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``name`` from the first mirror that has it, and verify it.

    The file is written to a temporary file beside ``destination`` and moved
    into place only when its payload's SHA-256 matches, so a failed or
    mismatching download leaves nothing behind.

    Parameters
    ----------
    name : str
        The file name, appended to each mirror's base URL.
    mirrors : sequence of str
        Base URLs ending in ``/``, tried in order.
    destination : path-like
        Where the verified file goes.
    sha256 : str
        The expected SHA-256 of the payload (uncompressed for ``.gz``).
    progress : bool, default True
        Show a progress bar on stderr.
    timeout : float, default 60
        Seconds to wait for each connection.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    DataError
        If no mirror served the file, or what was served did not verify.
    """
    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            with atomic_write(destination) as out:
                actual = _fetch(
                    url, out, gzipped=name.endswith(".gz"), progress=progress, timeout=timeout
                )
                if actual != sha256:
                    raise DataError(f"SHA-256 of the payload is {actual}, expected {sha256}")
            return Path(destination)
        except (OSError, DataError) as err:  # urllib raises OSErrors
            failures.append(f"{url}: {err}")
    first = failures[0] if len(failures[0]) <= 160 else failures[0][:157] + "..."
    raise DataError(
        f"could not download {name} from any of {len(mirrors)} mirrors (first: {first})."
    )


def _fetch(url: str, out: IO[bytes], *, gzipped: bool, progress: bool, timeout: float) -> str:
    """Copy ``url`` to ``out``; return the SHA-256 of the payload (uncompressed if gzipped)."""
    digest = hashlib.sha256()
    inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16) if gzipped else None
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        name = url.rsplit("/", 1)[-1]
        with progress_bar(total=total or None, desc=name, unit="iB", unit_scale=True,
                          unit_divisor=1024, disable=not progress) as bar:  # fmt: skip
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(_inflate(inflate, chunk) if inflate else chunk)
                done += len(chunk)
                bar.update(len(chunk))
    if total and done != total:
        raise DataError(f"connection closed after {done:,} of {total:,} bytes")
    if inflate is not None:
        digest.update(_inflate(inflate, b"", flush=True))
        if not inflate.eof:
            raise DataError("the gzip stream is truncated")
    return digest.hexdigest()


def _inflate(inflate: Any, chunk: bytes, flush: bool = False) -> bytes:
    # Any: a zlib.decompressobj(), whose type zlib names only privately (zlib._Decompress).
    try:
        data: bytes = inflate.flush() if flush else inflate.decompress(chunk)
        return data
    except zlib.error as err:
        raise DataError(f"the gzip data is corrupt ({err})") from None
