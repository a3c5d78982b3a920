"""Model files: a network's parameters and metadata in one ``.npz``.

The file holds ``W1``, ``b1``, ``W2``, ``b2`` and ``metadata``, a JSON string
with the format version, the sizes, the dtype, the xpnet version and whatever
the caller adds (training settings and results). It is read with
``allow_pickle=False``, so loading a file never runs code from it, and written
atomically, so a crash mid-write leaves an older file whole.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from xpnet._atomic import atomic_write
from xpnet._version import __version__
from xpnet.backend import FLOAT_DTYPES, to_numpy
from xpnet.errors import ModelFileError

__all__ = ["FORMAT_VERSION", "read_model", "write_model"]

FORMAT_VERSION = 1
PARAM_NAMES = ("W1", "b1", "W2", "b2")


def write_model(
    path: str | os.PathLike[str], params: dict[str, Any], metadata: dict[str, Any]
) -> None:
    """Write parameters (arrays of any backend) and JSON-serialisable metadata."""
    arrays = {name: to_numpy(params[name]) for name in PARAM_NAMES}
    D, H = arrays["W1"].shape
    header = {
        "format": "xpnet-model",
        "format_version": FORMAT_VERSION,
        "xpnet_version": __version__,
        "sizes": {"input_size": D, "hidden_size": H, "output_size": arrays["W2"].shape[1]},
        "dtype": str(arrays["W1"].dtype),
        **metadata,
    }
    with atomic_write(path) as f:
        np.savez(f, metadata=np.array(json.dumps(header)), **arrays)


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and check a model file.

    Returns
    -------
    params : dict of str to numpy.ndarray
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    metadata : dict

    Raises
    ------
    ModelFileError
        If the file is not an xpnet model, holds pickled objects, lacks or adds
        arrays, has arrays of the wrong shape or dtype, or comes from a newer
        format version.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            expected = {*PARAM_NAMES, "metadata"}
            if names != expected:
                missing, extra = sorted(expected - names), sorted(names - expected)
                raise ModelFileError(
                    f"{path}: not an xpnet model file (missing {missing}, unexpected {extra})"
                )
            arrays = {name: npz[name] for name in expected}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except ModelFileError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ModelFileError(
                f"{path}: holds pickled Python objects, which xpnet never loads"
            ) from None
        raise ModelFileError(f"{path}: not a readable .npz file ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"{path}: not a readable .npz file ({err})") from None

    metadata = _metadata(path, arrays.pop("metadata"))
    _check_params(path, arrays, metadata)
    return arrays, metadata


def _metadata(path: Any, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFileError(f"{path}: metadata must be a JSON string")
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({err})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != "xpnet-model":
        raise ModelFileError(f"{path}: metadata does not describe an xpnet model")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} by xpnet "
            f"{metadata.get('xpnet_version', '?')}; this xpnet ({__version__}) reads format "
            f"{FORMAT_VERSION} and older: upgrade xpnet to load it"
        )
    return metadata


def _check_params(path: Any, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
    try:
        sizes = metadata["sizes"]
        D, H, C = (int(sizes[key]) for key in ("input_size", "hidden_size", "output_size"))
        dtype = metadata["dtype"]
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{path}: metadata lacks the sizes or dtype") from None
    if dtype not in FLOAT_DTYPES:
        raise ModelFileError(f"{path}: dtype {dtype!r} is not one of {FLOAT_DTYPES}")
    shapes = {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}
    for name, shape in shapes.items():
        array = arrays[name]
        if array.shape != shape or array.dtype != np.dtype(dtype):
            raise ModelFileError(
                f"{path}: {name} has shape {array.shape} and dtype {array.dtype}, "
                f"expected {shape} and {dtype}"
            )
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} contains NaN or infinity")
