"""Model files: a network's parameters, its preprocessing and its metadata in one ``.npz``.

The file is a zip archive of ``.npy`` arrays: ``W1``, ``b1``, ``W2``, ``b2``,
``metadata`` (a JSON string with the format version, the sizes, the dtype, the
xpnet version and what the caller adds: training settings, results), and, for a
network that has a preprocessing, ``preprocessing_mean`` (the preprocessing's mean
row, described in the metadata's ``preprocessing``). It is written atomically, so a
crash mid-write leaves an older file whole. xpnet reads the format it writes,
:data:`FORMAT_VERSION`, and no other.

Reading trusts nothing in the file: it never unpickles, it checks every array's
declared shape and dtype against the bytes actually there before allocating, it
reads at most what the file holds, it type-checks every metadata field it uses, and
it checks that the preprocessing is one xpnet can have fitted (its name's scale, a
mean of pixel values).
Anything wrong is a :class:`xpnet.errors.ModelFileError` that says what.
"""

from __future__ import annotations

import json
import numbers
import os
import zipfile
from collections.abc import Mapping
from typing import IO

import numpy as np

from xpnet._atomic import atomic_write
from xpnet._typing import JSON, Array, ArrayLike, JSONObject
from xpnet._version import __version__
from xpnet.backend import FLOAT_DTYPES, to_numpy
from xpnet.errors import ModelFileError
from xpnet.preprocess import PREPROCESSINGS, check_fitted

__all__ = ["FORMAT_VERSION", "RESERVED_KEYS", "read_model", "write_model"]

FORMAT_VERSION = 2
PARAM_NAMES = ("W1", "b1", "W2", "b2")
EXTRA_NAMES = ("preprocessing_mean",)
#: Metadata keys xpnet writes itself; a caller's metadata may not set them.
RESERVED_KEYS = ("format", "format_version", "xpnet_version", "sizes", "dtype", "preprocessing")
#: The most bytes of JSON metadata a file may declare.
MAX_METADATA_BYTES = 1 << 20
#: Deflate cannot compress by more than about 1032:1; a larger claim is a lie.
_MAX_COMPRESSION_RATIO = 1100


def write_model(
    path: str | os.PathLike[str],
    params: Mapping[str, Array],
    metadata: Mapping[str, JSON],
    extras: Mapping[str, ArrayLike] | None = None,
) -> None:
    """Write parameters (arrays of any backend), JSON-serialisable metadata and extra arrays.

    ``metadata`` may hold the reserved key ``preprocessing`` only together with its
    arrays in ``extras``; the other reserved keys are xpnet's.

    Raises
    ------
    ValueError
        If ``metadata`` sets a reserved key, is not JSON-serialisable, or ``extras``
        holds an unknown array; nothing is written then.
    """
    clash = sorted(set(metadata) & set(RESERVED_KEYS) - ({"preprocessing"} if extras else set()))
    if clash:
        raise ValueError(
            f"metadata may not set {clash}: xpnet writes these keys itself; rename them"
        )
    unknown = sorted(set(extras or {}) - set(EXTRA_NAMES))
    if unknown:
        raise ValueError(f"unknown extra arrays {unknown}; expected some of {list(EXTRA_NAMES)}")
    arrays = {name: to_numpy(params[name]) for name in PARAM_NAMES}
    arrays.update({name: np.asarray(value) for name, value in (extras or {}).items()})
    D, H = arrays["W1"].shape
    header = {
        "format": "xpnet-model",
        "format_version": FORMAT_VERSION,
        "xpnet_version": __version__,
        "sizes": {"input_size": D, "hidden_size": H, "output_size": arrays["W2"].shape[1]},
        "dtype": str(arrays["W1"].dtype),
        **metadata,
    }
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from None
    with atomic_write(path) as f:
        # NumPy's stubs read ``**arrays`` as its ``allow_pickle`` flag: a false alarm.
        np.savez(f, **{"metadata": np.array(text), **arrays})  # type: ignore[arg-type]


def read_model(
    path: str | os.PathLike[str],
) -> tuple[dict[str, np.ndarray], JSONObject, dict[str, np.ndarray]]:
    """Read and check a model file.

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
        If the file is missing, not a zip of ``.npy`` arrays, holds pickled objects
        or unknown arrays, declares more data than it holds, has arrays of the
        wrong shape or dtype or with NaN, metadata that is not what xpnet writes,
        or is of another format version than :data:`FORMAT_VERSION`.
    """
    arrays = _read_arrays(path)
    metadata = _metadata(path, arrays.pop("metadata"))
    params = {name: arrays.pop(name) for name in PARAM_NAMES}
    _check_params(path, params, metadata)
    extras = arrays
    _check_preprocessing(path, metadata, extras, params["W1"].shape[0])
    return params, metadata, extras


def _read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every array of the archive, each checked against the bytes really there."""
    try:
        size_on_disk = os.stat(path).st_size
        if not zipfile.is_zipfile(path):
            raise ModelFileError(
                f"{path}: not an .npz model file (a zip archive of .npy arrays); a model "
                "file is written by `xpnet train` or TwoLayerNet.save"
            )
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [info.filename for info in members]
            wrong = [name for name in names if not name.endswith(".npy")]
            if wrong:
                raise ModelFileError(f"{path}: members {wrong[:5]} are not .npy arrays")
            found = {name[: -len(".npy")] for name in names}
            required, allowed = {*PARAM_NAMES, "metadata"}, {*PARAM_NAMES, "metadata", *EXTRA_NAMES}
            if len(found) != len(names) or not required <= found or not found <= allowed:
                missing, extra = sorted(required - found), sorted(found - allowed)
                raise ModelFileError(
                    f"{path}: not an xpnet model file (missing {missing}, unexpected {extra})"
                )
            total = sum(info.file_size for info in members)
            if total > size_on_disk * _MAX_COMPRESSION_RATIO:
                raise ModelFileError(
                    f"{path}: its members claim {total:,} bytes, more than a {size_on_disk:,}-byte "
                    "file can hold: corrupt"
                )
            return {
                info.filename[: -len(".npy")]: _read_member(path, archive, info) for info in members
            }
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except ModelFileError:
        raise
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        NotImplementedError,
    ) as err:  # NotImplementedError: a zip feature or version zipfile lacks
        raise ModelFileError(f"{path}: not a readable .npz file ({err})") from None


def _read_member(
    path: str | os.PathLike[str], archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> np.ndarray:
    name = info.filename
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            header = (
                np.lib.format.read_array_header_1_0(stream)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(stream)
            )
        except ValueError as err:
            raise ModelFileError(f"{path}: {name} is not a valid .npy array ({err})") from None
        shape, fortran_order, dtype = header
        if dtype.hasobject:
            raise ModelFileError(
                f"{path}: {name} holds pickled Python objects, which xpnet never loads"
            )
        count = 1
        for extent in shape:
            count *= int(extent)
        declared = count * dtype.itemsize
        if declared > info.file_size:
            raise ModelFileError(
                f"{path}: {name} declares shape {shape} of {dtype} ({declared:,} bytes), but "
                f"holds only {info.file_size:,} bytes: truncated or corrupt"
            )
        data = _read_exactly(stream, declared, path, name)
    array = np.frombuffer(bytearray(data), dtype=dtype)  # writable: training updates in place
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    return array.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else array


def _read_exactly(stream: IO[bytes], n: int, path: str | os.PathLike[str], name: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ModelFileError(f"{path}: {name} ends after {len(data):,} of {n:,} bytes: truncated")
    return data


def _metadata(path: str | os.PathLike[str], raw: np.ndarray) -> JSONObject:
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ModelFileError(f"{path}: metadata must be a JSON string")
    if raw.dtype.itemsize > 4 * MAX_METADATA_BYTES:
        raise ModelFileError(f"{path}: metadata is larger than {MAX_METADATA_BYTES:,} bytes")
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({err})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: metadata nests too deeply to be xpnet's") from None
    if not isinstance(metadata, dict) or metadata.get("format") != "xpnet-model":
        raise ModelFileError(f"{path}: metadata does not describe an xpnet model")
    version = metadata.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version} by xpnet "
            f"{metadata.get('xpnet_version', '?')}; this xpnet ({__version__}) reads format "
            f"{FORMAT_VERSION}: upgrade xpnet to load it"
        )
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format {version} was never released; this xpnet reads format "
            f"{FORMAT_VERSION}: train and save the model again"
        )
    _check_fields(path, metadata)
    return metadata


# The metadata fields xpnet reads, and the JSON types each must have (None: absent or null).
_NUMBER = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "xpnet_version": (str,),
    "sizes": (dict,),
    "dtype": (str,),
    "dataset": (str,),
    "seed": (int,),
    "recipe": (dict,),
    "results": (dict,),
    "interrupted": (bool,),
    "training": (dict, type(None)),
    "preprocessing": (dict,),
}
_TRAINING_FIELDS: dict[str, tuple[type, ...]] = {
    "settings": (dict,),
    "path": (str,),
    "iterations": (int,),
    "final_loss": (*_NUMBER, type(None)),
    "final_val_acc": (*_NUMBER, type(None)),
}


def _check_fields(path: str | os.PathLike[str], metadata: JSONObject) -> None:
    """Type-check every field xpnet reads; say which one is wrong and how."""

    def check(where: str, value: JSON, types: tuple[type, ...]) -> None:
        is_bool = isinstance(value, bool)
        if not isinstance(value, types) or (is_bool and bool not in types):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ModelFileError(
                f"{path}: metadata {where} must be {wanted}, got {type(value).__name__} "
                f"{_short(value)}"
            )

    for key, types in _FIELDS.items():
        if key in metadata:
            check(key, metadata[key], types)
    for key, value in (metadata.get("results") or {}).items():
        check(f"results.{key}", value, _NUMBER)
    training = metadata.get("training") or {}
    for key, types in _TRAINING_FIELDS.items():
        if key in training:
            check(f"training.{key}", training[key], types)
    preprocessing = metadata.get("preprocessing")
    if preprocessing is None:
        return
    check("preprocessing.name", preprocessing.get("name"), (str,))
    check("preprocessing.scale", preprocessing.get("scale"), _NUMBER)
    name = preprocessing["name"]
    if name not in PREPROCESSINGS:
        raise ModelFileError(
            f"{path}: unknown preprocessing {_short(name)}; xpnet knows {list(PREPROCESSINGS)}"
        )


def _short(value: JSON) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_params(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], metadata: JSONObject
) -> None:
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


def _check_preprocessing(
    path: str | os.PathLike[str], metadata: JSONObject, extras: dict[str, np.ndarray], D: int
) -> None:
    described = isinstance(metadata.get("preprocessing"), dict)
    if described != ("preprocessing_mean" in extras):
        raise ModelFileError(
            f"{path}: the preprocessing's description and its mean array come together; "
            "the file has one without the other"
        )
    if described:
        mean = extras["preprocessing_mean"]
        if mean.shape != (D,) or mean.dtype != np.float32 or not np.all(np.isfinite(mean)):
            raise ModelFileError(
                f"{path}: preprocessing_mean must be {D} finite float32 values, got shape "
                f"{mean.shape} of {mean.dtype}"
            )
        described = metadata["preprocessing"]
        try:
            check_fitted(described["name"], described["scale"], mean)
        except ValueError as err:
            raise ModelFileError(f"{path}: {err}: corrupt, or not written by xpnet") from None
