"""A dataset's files in its directory: fetched when missing, known by their SHA-256."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xpnet._wording import setting
from xpnet.data.datasets import (
    DATASETS,
    TEST_IMAGES,
    TEST_LABELS,
    PathLike,
    directory_of,
    fetch_hint,
    lookup,
    named_by,
)
from xpnet.data.download import download, payload_sha256
from xpnet.errors import DataError

__all__ = ["check_files", "fetch", "identify", "verify"]


def fetch(
    *, data_dir: PathLike | None = None, dataset: str = "mnist", progress: bool = True
) -> Path:
    """Make sure a dataset's four files are present, downloading the missing ones.

    Files are downloaded into a directory the user named (``data_dir``, or the
    dataset's environment variable) only if it exists; xpnet creates no directory
    but its own cache.

    Returns
    -------
    pathlib.Path
        The data directory (see :func:`xpnet.data.data_dir`).

    Raises
    ------
    DataError
        If a user-named directory does not exist, or a missing file cannot be
        downloaded and verified; the message says where the files belong.
    """
    ds = lookup(dataset)
    directory = directory_of(ds, data_dir)
    named = named_by(ds, data_dir)
    missing = [name for name in ds.sha256 if not (directory / name).is_file()]
    if missing and named and not directory.is_dir():
        raise DataError(
            f"the {ds.name} data directory {directory} (from {named}) does not exist; "
            f"create it, or fix {named}"
        )
    for name in missing:
        try:
            download(name, ds.mirrors, directory / name, ds.sha256[name], progress=progress)
        except DataError as err:
            raise DataError(
                f"{err} The {ds.name} files belong in {directory}"
                + (f" (from {named})" if named else "")
                + f". Without a network, copy the four ({', '.join(ds.sha256)}) there from "
                f"a machine that has one ({ds.mirrors[0]}, or its {fetch_hint(ds)}), or point "
                f"{ds.env} or {setting('data_dir')} at a directory that has them."
            ) from None
    return directory


def verify(*, data_dir: PathLike | None = None, dataset: str = "mnist") -> dict[str, bool]:
    """Check each file's payload against its known SHA-256.

    Returns
    -------
    dict of str to bool
        For each of the four files, whether it is present and matches.
    """
    owners = identify(data_dir=data_dir, dataset=dataset)
    return {name: owner == dataset for name, owner in owners.items()}


def identify(*, data_dir: PathLike | None = None, dataset: str = "mnist") -> dict[str, str | None]:
    """Which dataset each of the four files in ``dataset``'s directory belongs to.

    Returns
    -------
    dict of str to str or None
        For each file name, the dataset whose known SHA-256 its payload has
        (``dataset`` itself when it verifies), or None when it is missing or no
        known dataset's.
    """
    ds = lookup(dataset)
    directory = directory_of(ds, data_dir)
    return {
        name: _owner(name, payload_sha256(directory / name))
        if (directory / name).is_file()
        else None
        for name in ds.sha256
    }


def _owner(name: str, sha256: str) -> str | None:
    """The dataset whose file ``name`` has this SHA-256, if any."""
    return next((d.name for d in DATASETS.values() if d.sha256.get(name) == sha256), None)


def check_files(*, data_dir: PathLike, dataset: str, names: Iterable[str] | None = None) -> None:
    """Check that files in ``data_dir`` are ``dataset``'s, by their SHA-256.

    Parameters
    ----------
    data_dir : path-like
    dataset : {"mnist", "fashion-mnist"}
    names : iterable of str, optional
        The files to check (default: all four).

    Raises
    ------
    DataError
        If a file is missing, or is another dataset's (named when known) or no
        known dataset's; the message says where the dataset's files are set.
    """
    ds = lookup(dataset)
    directory = Path(data_dir)
    for name in ds.sha256 if names is None else names:
        kind = "test" if name in (TEST_IMAGES, TEST_LABELS) else "training"
        if not (directory / name).is_file():
            raise DataError(
                f"{ds.name} {kind} file {name} is missing from {directory}; download it "
                f"with {fetch_hint(ds)} or set {ds.env}"
            )
        owner = _owner(name, payload_sha256(directory / name))
        if owner == ds.name:
            continue
        raise DataError(
            f"{directory / name} is "
            + (f"{owner}'s, not {ds.name}'s" if owner else f"not {ds.name}'s (its SHA-256 differs)")
            + f": point {setting('data_dir')} (or {ds.env}) at the {ds.name} files"
        )
