"""A model file's metadata: one JSON string, checked field by field before it is used.

:mod:`xpnet.model_file` reads the metadata first and trusts nothing in it: its size and
nesting are bounded, its format and version must be xpnet's, and every field xpnet
reads has its JSON type checked here, with a :class:`xpnet.errors.ModelFileError`
that names the field.
"""

from __future__ import annotations

import json
import os

import numpy as np

from xpnet._npz import NpyHeader
from xpnet._typing import JSON, JSONObject
from xpnet._version import __version__
from xpnet.errors import ModelFileError
from xpnet.preprocess import PREPROCESSINGS

__all__ = [
    "FORMAT_VERSION",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "check_metadata_header",
    "nests_deeper",
    "parsed_metadata",
    "short",
]

FORMAT_VERSION = 2
#: The most bytes of JSON metadata a file may hold.
MAX_METADATA_BYTES = 1 << 20
#: The deepest a file's metadata may nest (lists and objects within each other).
MAX_METADATA_DEPTH = 100


def check_metadata_header(path: str | os.PathLike[str], header: NpyHeader) -> None:
    """The metadata member must be one JSON string of at most MAX_METADATA_BYTES."""
    if header.dtype.kind != "U" or header.shape != () or header.dtype.itemsize == 0:
        raise ModelFileError(f"{path}: metadata must be a JSON string")
    if header.dtype.itemsize > 4 * MAX_METADATA_BYTES:
        raise ModelFileError(f"{path}: metadata is larger than {MAX_METADATA_BYTES:,} bytes")


def nests_deeper(value: object, limit: int) -> bool:
    """Whether ``value`` has lists or dicts nested more than ``limit`` deep (a value that
    contains itself does); walked without recursion, and stopped at ``limit``."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, (list, tuple)):
            if depth == limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def _too_deep(path: str | os.PathLike[str]) -> str:
    return f"{path}: metadata nests deeper than {MAX_METADATA_DEPTH} levels: not xpnet's"


def parsed_metadata(path: str | os.PathLike[str], raw: np.ndarray) -> JSONObject:
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: metadata is not valid JSON ({err})") from None
    except RecursionError:  # nested too deep for the parser
        raise ModelFileError(_too_deep(path)) from None
    if nests_deeper(metadata, MAX_METADATA_DEPTH):
        raise ModelFileError(_too_deep(path))
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
    "checkpoint": (dict,),
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
                f"{short(value)}"
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
            f"{path}: unknown preprocessing {short(name)}; xpnet knows {list(PREPROCESSINGS)}"
        )


def short(value: JSON) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
