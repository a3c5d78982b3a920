"""Model files: a network's parameters, its preprocessing and its metadata in one ``.npz``.

The file is a zip archive of ``.npy`` arrays: ``W1``, ``b1``, ``W2``, ``b2``,
``metadata`` (a JSON string with the format version, the sizes, the dtype, the
xpnet version and what the caller adds: training settings, results), and, for a
network that has a preprocessing, ``preprocessing_mean`` (the preprocessing's mean
row, described in the metadata's ``preprocessing``). A training checkpoint
(:class:`xpnet.training.Checkpointing`) is a model file too, whose metadata's
``checkpoint`` declares the shape and dtype of each of its ``checkpoint.*`` arrays (the
optimiser's state, the history, ...): :meth:`xpnet.TwoLayerNet.load` reads one as the
network it holds. It is written atomically, so a
crash mid-write leaves an older file whole. xpnet reads the format it writes,
:data:`FORMAT_VERSION`, and no other.

Reading trusts nothing in the file: it opens regular files only (never a FIFO or
a device, which could block or never end), it never unpickles, it checks every
array's ``.npy`` header (its shape and dtype against the metadata's, its size against
the bytes there, with no trailing bytes) before reading the array (:mod:`xpnet._npz`),
it type-checks every metadata field it uses, and it checks that the preprocessing is
one xpnet can have fitted (its name's scale, a mean of pixel values). Anything wrong,
a damaged zip or compressed stream included, is a
:class:`xpnet.errors.ModelFileError` that says what. Writing refuses, before
anything is written, metadata that reading would refuse: over
``MAX_METADATA_BYTES`` (1 MiB) of JSON, or nested deeper than ``MAX_METADATA_DEPTH``
(100).
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping
from functools import partial

import numpy as np

from xpnet import _checks
from xpnet._atomic import atomic_write
from xpnet._model_metadata import (
    FORMAT_VERSION,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    check_metadata_header,
    nests_deeper,
    parsed_metadata,
    short,
)
from xpnet._npz import MAX_COMPRESSION_RATIO, NpyHeader, open_npz
from xpnet._typing import INITS, JSON, Array, ArrayLike, Init, JSONObject
from xpnet._version import __version__
from xpnet.backend import FLOAT_DTYPES, to_numpy
from xpnet.errors import ModelFileError
from xpnet.preprocess import Preprocessing, check_fitted

__all__ = [
    "FORMAT_VERSION",
    "RESERVED_KEYS",
    "preprocessing_contents",
    "read_model",
    "recorded_initialisation",
    "recorded_preprocessing",
    "write_model",
]

PARAM_NAMES = ("W1", "b1", "W2", "b2")
EXTRA_NAMES = ("preprocessing_mean",)
#: The names of a checkpoint's arrays begin so; the metadata's ``checkpoint.arrays``
#: declares each one's shape and dtype (one of :data:`CHECKPOINT_DTYPES`).
CHECKPOINT_PREFIX = "checkpoint."
CHECKPOINT_DTYPES = ("float32", "float64", "int64")
#: The most arrays a checkpoint declares.
MAX_CHECKPOINT_ARRAYS = 64
#: Metadata keys xpnet writes itself; a caller's metadata may not set them.
RESERVED_KEYS = (
    "format", "format_version", "xpnet_version", "sizes", "dtype", "preprocessing", "checkpoint",
)  # fmt: skip


def write_model(
    path: str | os.PathLike[str],
    params: Mapping[str, Array],
    metadata: Mapping[str, JSON],
    extras: Mapping[str, ArrayLike] | None = None,
) -> None:
    """Write parameters (arrays of any backend), JSON-serialisable metadata and extra arrays.

    ``metadata`` may hold the reserved key ``preprocessing`` only together with its
    arrays in ``extras``, and ``checkpoint`` (a dict) only together with
    ``checkpoint.*`` arrays, whose shapes and dtypes are then declared in it; the
    other reserved keys are xpnet's.

    Raises
    ------
    ValueError
        If ``metadata`` sets a reserved key, is not JSON-serialisable, nests deeper than
        ``MAX_METADATA_DEPTH`` or takes more than ``MAX_METADATA_BYTES`` as
        JSON, or ``extras`` holds an unknown array; nothing is written then.
    OSError
        If ``path`` exists and is not a regular file (see :func:`xpnet._atomic.atomic_write`).
    """
    extras = dict(extras or {})
    checkpointed = {name: np.asarray(extras.pop(name)) for name in list(extras)
                    if name.startswith(CHECKPOINT_PREFIX)}  # fmt: skip
    allowed = {"preprocessing"} if extras else set()
    if checkpointed and isinstance(metadata.get("checkpoint"), dict):
        allowed.add("checkpoint")
    clash = sorted(set(metadata) & set(RESERVED_KEYS) - allowed)
    if clash:
        raise ValueError(
            f"metadata may not set {clash}: xpnet writes these keys itself; rename them"
        )
    unknown = sorted(set(extras) - set(EXTRA_NAMES))
    if unknown:
        raise ValueError(f"unknown extra arrays {unknown}; expected some of {list(EXTRA_NAMES)}")
    odd = sorted(name for name, a in checkpointed.items() if str(a.dtype) not in CHECKPOINT_DTYPES)
    if odd or len(checkpointed) > MAX_CHECKPOINT_ARRAYS:
        raise ValueError(
            f"checkpoint arrays must be at most {MAX_CHECKPOINT_ARRAYS}, of dtypes "
            f"{list(CHECKPOINT_DTYPES)}; {odd or len(checkpointed)} are not"
        )
    arrays = {name: to_numpy(params[name]) for name in PARAM_NAMES}
    arrays.update({name: np.asarray(value) for name, value in extras.items()})
    arrays.update(checkpointed)
    D, H = arrays["W1"].shape
    header = {
        "format": "xpnet-model",
        "format_version": FORMAT_VERSION,
        "xpnet_version": __version__,
        "sizes": {"input_size": D, "hidden_size": H, "output_size": arrays["W2"].shape[1]},
        "dtype": str(arrays["W1"].dtype),
        **metadata,
    }
    if checkpointed:
        declared = {name[len(CHECKPOINT_PREFIX):]: {"shape": list(a.shape), "dtype": str(a.dtype)}
                    for name, a in checkpointed.items()}  # fmt: skip
        header["checkpoint"] = {**metadata["checkpoint"], "arrays": declared}
    if nests_deeper(header, MAX_METADATA_DEPTH):
        raise ValueError(
            f"metadata nests deeper than {MAX_METADATA_DEPTH} levels (or contains itself), "
            "more than a model file holds; keep nested results in a file beside the model"
        )
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from None
    if len(text) > MAX_METADATA_BYTES:  # ASCII: json.dumps escapes the rest
        raise ValueError(
            f"metadata takes {len(text):,} bytes as JSON, more than the {MAX_METADATA_BYTES:,} "
            "a model file holds; keep large results (histories, arrays) in a file beside "
            "the model"
        )
    with atomic_write(path) as f:
        # NumPy's stubs read ``**arrays`` as its ``allow_pickle`` flag: a false alarm.
        np.savez(f, **{"metadata": np.array(text), **arrays})  # type: ignore[arg-type]


def read_model(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], JSONObject, dict[str, np.ndarray]]:
    """Read and check a model file.

    The metadata is read first; each array's ``.npy`` header is then checked against
    it (shape and dtype) before the array's data is read.

    Returns
    -------
    params : dict of str to numpy.ndarray
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,), native byte order.
    metadata : dict
    extras : dict of str to numpy.ndarray
        ``preprocessing_mean`` (D,) where the file has it.

    Raises
    ------
    ModelFileError
        If the file is missing or not a regular file (a FIFO, a device), not a zip of
        ``.npy`` arrays, damaged (a corrupt stream, encrypted, trailing bytes), holds
        pickled objects or unknown arrays, declares more data than it holds, has arrays
        of the wrong shape or dtype or with NaN, metadata that is not what xpnet writes,
        or is of another format version than :data:`FORMAT_VERSION`.
    """
    with open_npz(path) as archive:
        found = set(archive.members)
        required, allowed = {*PARAM_NAMES, "metadata"}, {*PARAM_NAMES, "metadata", *EXTRA_NAMES}
        allowed |= {name for name in found if name.startswith(CHECKPOINT_PREFIX)}  # declared?
        if not required <= found or not found <= allowed:
            missing, extra = sorted(required - found), sorted(found - allowed)
            raise ModelFileError(
                f"{path}: not an xpnet model file (missing {missing}, unexpected {extra})"
            )
        total = sum(info.file_size for info in archive.members.values())
        if total > archive.size_on_disk * MAX_COMPRESSION_RATIO:
            raise ModelFileError(
                f"{path}: its members claim {total:,} bytes, more than a "
                f"{archive.size_on_disk:,}-byte file can hold: corrupt"
            )
        raw = archive.read("metadata", partial(check_metadata_header, path))
        metadata = parsed_metadata(path, raw)
        expected = _expected_arrays(path, metadata)
        declared = _declared_checkpoint_arrays(path, metadata)
        stored = {name for name in found if name.startswith(CHECKPOINT_PREFIX)}
        if stored != set(declared):
            raise ModelFileError(
                f"{path}: its checkpoint declares the arrays {sorted(declared)} but holds "
                f"{sorted(stored)}: corrupt"
            )
        expected.update(declared)
        _check_preprocessing_described(path, metadata, "preprocessing_mean" in found)
        arrays = {
            name: archive.read(name, partial(_expect, path, name, *expected[name]))
            for name in expected
            if name in found
        }
    params = {name: arrays.pop(name) for name in PARAM_NAMES}
    for name, array in (params | arrays).items():
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: {name} contains NaN or infinity")
    extras = arrays
    _check_preprocessing(path, metadata, extras)
    return params, metadata, extras


def _expect(
    path: str | os.PathLike[str], name: str, shape: tuple[int, ...], dtype: str, header: NpyHeader
) -> None:
    """Refuse an array whose header declares another shape or dtype than ``name``'s."""
    if header.shape != shape or header.dtype.newbyteorder("=") != np.dtype(dtype):
        raise ModelFileError(
            f"{path}: {name} has shape {header.shape} and dtype {header.dtype}, "
            f"expected {shape} and {dtype}"
        )


def _expected_arrays(
    path: str | os.PathLike[str], metadata: JSONObject
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each array's shape and dtype, as the metadata's sizes and dtype give them."""
    sizes = metadata.get("sizes")
    keys = ("input_size", "hidden_size", "output_size")
    if not isinstance(sizes, dict) or not all(
        isinstance(sizes.get(key), numbers.Integral) and not isinstance(sizes.get(key), bool)
        and sizes[key] > 0 for key in keys
    ) or "dtype" not in metadata:  # fmt: skip
        raise ModelFileError(f"{path}: metadata lacks the sizes (positive integers) or dtype")
    D, H, C = (int(sizes[key]) for key in keys)
    dtype = metadata["dtype"]
    if dtype not in FLOAT_DTYPES:
        raise ModelFileError(f"{path}: dtype {dtype!r} is not one of {FLOAT_DTYPES}")
    assert isinstance(dtype, str)  # a member of FLOAT_DTYPES
    return {"W1": ((D, H), dtype), "b1": ((H,), dtype), "W2": ((H, C), dtype),
            "b2": ((C,), dtype), "preprocessing_mean": ((D,), "float32")}  # fmt: skip


def _declared_checkpoint_arrays(
    path: str | os.PathLike[str], metadata: JSONObject
) -> dict[str, tuple[tuple[int, ...], str]]:
    """The ``checkpoint.*`` arrays a checkpoint's metadata declares, with their shapes and
    dtypes (none for a model file that is not a checkpoint)."""
    checkpoint = metadata.get("checkpoint")
    if checkpoint is None:
        return {}
    arrays = checkpoint.get("arrays") if isinstance(checkpoint, dict) else None
    if not isinstance(arrays, dict) or len(arrays) > MAX_CHECKPOINT_ARRAYS:
        raise ModelFileError(
            f"{path}: metadata checkpoint must declare its arrays (at most "
            f"{MAX_CHECKPOINT_ARRAYS}): not xpnet's"
        )
    declared = {}
    for name, spec in arrays.items():
        shape = spec.get("shape") if isinstance(spec, dict) else None
        dtype = spec.get("dtype") if isinstance(spec, dict) else None
        if not (isinstance(shape, list) and len(shape) <= 2 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ) and dtype in CHECKPOINT_DTYPES):  # fmt: skip
            raise ModelFileError(
                f"{path}: metadata checkpoint.arrays.{name} must give a shape (at most two "
                f"sizes) and a dtype of {list(CHECKPOINT_DTYPES)}, got {short(spec)}"
            )
        assert isinstance(dtype, str)  # as checked
        assert isinstance(shape, list)
        declared[CHECKPOINT_PREFIX + name] = (tuple(int(n) for n in shape), dtype)
    return declared


def _check_preprocessing_described(
    path: str | os.PathLike[str], metadata: JSONObject, has_mean: bool
) -> None:
    if isinstance(metadata.get("preprocessing"), dict) != has_mean:
        raise ModelFileError(
            f"{path}: the preprocessing's description and its mean array come together; "
            "the file has one without the other"
        )


def _check_preprocessing(
    path: str | os.PathLike[str], metadata: JSONObject, extras: dict[str, np.ndarray]
) -> None:
    """A described preprocessing (its mean's shape and dtype already checked) must be
    one xpnet can have fitted."""
    described = metadata.get("preprocessing")
    if not isinstance(described, dict):
        return
    mean = extras["preprocessing_mean"]
    try:
        check_fitted(described["name"], described["scale"], mean)
    except ValueError as err:
        raise ModelFileError(f"{path}: {err}: corrupt, or not written by xpnet") from None


def preprocessing_contents(
    preprocessing: Preprocessing | None,
) -> tuple[dict[str, JSON], dict[str, np.ndarray]]:
    """The metadata (``preprocessing``, its description) and the extra arrays (its mean)
    that record ``preprocessing`` in a model file; none for None."""
    if preprocessing is None:
        return {}, {}
    return ({"preprocessing": preprocessing.metadata()},
            {"preprocessing_mean": preprocessing.mean})  # fmt: skip


def recorded_initialisation(metadata: JSONObject) -> tuple[Init, float]:
    """The initialisation a model file's training settings record; the lab's where they
    record none (files from before xpnet recorded it) or none that is valid."""
    recorded = (metadata.get("training") or {}).get("settings") or {}
    try:
        return (_checks.choice("init", recorded.get("init"), INITS),
                _checks.real("std", recorded.get("std"), low=0.0, low_open=False))  # fmt: skip
    except (TypeError, ValueError):
        return "gaussian", 1e-4


def recorded_preprocessing(
    metadata: JSONObject, extras: Mapping[str, np.ndarray]
) -> Preprocessing | None:
    """The preprocessing a model file records, from :func:`read_model`'s metadata and
    extras; None for a model saved without one."""
    described = metadata.get("preprocessing")
    if not isinstance(described, dict):
        return None
    mean = extras["preprocessing_mean"]
    return Preprocessing(str(described["name"]), float(described["scale"]), mean)
