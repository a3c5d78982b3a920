"""Fuzzing model files: whatever the bytes, loading succeeds or raises ModelFileError.

Random bytes, truncations and bit flips of a real model file, hand-made ``.npy``
headers inside a zip, metadata of every JSON shape, and crafted preprocessings (any
name, scale and mean): thousands of cases
(``XPNET_FUZZ_EXAMPLES`` per test, 1000 by default), none a traceback of another kind.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xpnet import TwoLayerNet
from xpnet.errors import ModelFileError
from xpnet.model_file import FORMAT_VERSION
from xpnet.preprocess import fit_preprocessing

FUZZ = settings(
    max_examples=int(os.environ.get("XPNET_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def load_bytes(data: bytes, *, refused: bool = False) -> str | None:
    """Write ``data`` as a model file and load it: success (unless ``refused``), or a
    ModelFileError naming it, whose message is returned. What loads is of the one
    format xpnet writes, its preprocessing described or absent."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz-model.npz"
        path.write_bytes(data)
        try:
            net = TwoLayerNet.load(path)
        except ModelFileError as err:
            message = str(err)
        else:
            assert not refused, "a file that must be refused loaded"
            assert net.metadata["format_version"] == FORMAT_VERSION
            assert isinstance(net.metadata.get("preprocessing", {}), dict)
            return None
    assert str(path) in message
    return message


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    """A real model file (with its preprocessing), as bytes."""
    rng = np.random.default_rng(0)
    net = TwoLayerNet(16, 5, 3, std=0.1, seed=0)
    images = rng.integers(0, 256, (30, 16)).astype(np.float32)
    net.preprocessing = fit_preprocessing("subtract_mean_image", images)
    X, y = net.preprocessing(images).astype(np.float64), rng.integers(0, 3, 30)
    net.train(X, y, X, y, num_iters=5, batch_size=10)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.npz"
        net.save(path, {"dataset": "mnist", "results": {"val_acc": 0.5}})
        return path.read_bytes()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@FUZZ
@given(data=st.binary(max_size=1024), zip_magic=st.booleans())
def test_random_bytes(data, zip_magic):
    load_bytes((b"PK\x03\x04" if zip_magic else b"") + data)


@FUZZ
@given(data=st.data())
def test_truncated_model_files(model_bytes, data):
    load_bytes(model_bytes[: data.draw(st.integers(0, len(model_bytes) - 1))])


@FUZZ
@given(data=st.data())
def test_bit_flipped_model_files(model_bytes, data):
    content = bytearray(model_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] ^= 1 << data.draw(st.integers(0, 7))
    load_bytes(bytes(content))


NPY_DTYPES = ["<f8", ">f8", "<f4", "|u1", "<i8", "<U20", "|O", "<c16", "|b1", "<f2"]


@FUZZ
@given(
    member=st.sampled_from(["W1", "b1", "W2", "b2", "metadata", "preprocessing_mean"]),
    descr=st.sampled_from(NPY_DTYPES),
    shape=st.lists(st.integers(0, 2**40), max_size=4).map(tuple),
    fortran=st.booleans(),
    payload=st.binary(max_size=256),
)
def test_crafted_array_headers(model_bytes, member, descr, shape, fortran, payload):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": fortran, "shape": shape}
    )
    members = members_of(model_bytes)
    members[f"{member}.npy"] = header.getvalue() + payload
    load_bytes(zip_bytes(members))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = [
    "format", "format_version", "xpnet_version", "sizes", "dtype", "dataset", "seed",
    "recipe", "results", "interrupted", "training", "preprocessing",
]  # fmt: skip


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=4))
@example(changes={"format_version": 1})  # a format never released
@example(changes={"preprocessing": "subtract_mean_image"})  # its preprocessing, by name
def test_crafted_metadata(model_bytes, changes):
    members = members_of(model_bytes)
    with io.BytesIO(members["metadata.npy"]) as f:
        metadata = json.loads(str(np.load(f)))
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps({**metadata, **changes})))
    members["metadata.npy"] = buffer.getvalue()
    load_bytes(zip_bytes(members))


PREPROCESSING_NAMES = ["subtract_mean_image", "scale_and_center", "", "bogus"]
any_float = st.floats(allow_nan=True, allow_infinity=True)


@FUZZ
@given(
    name=st.sampled_from(PREPROCESSING_NAMES) | st.text(max_size=8),
    scale=any_float | st.integers(-(2**70), 2**70) | st.sampled_from([1.0, 1 / 255]),
    mean=st.lists(st.floats(width=32) | st.floats(0, 255, width=32), min_size=16, max_size=16),
)
def test_crafted_preprocessing(model_bytes, name, scale, mean):
    """A stored preprocessing loads only if it makes finite rows of pixels, like a fitted one."""
    members = members_of(model_bytes)
    with io.BytesIO(members["metadata.npy"]) as f:
        metadata = json.loads(str(np.load(f)))
    metadata["preprocessing"] = {"name": name, "scale": scale}
    for member, array in [
        ("metadata", np.array(json.dumps(metadata))),  # NaN and Infinity as JSON lets them
        ("preprocessing_mean", np.array(mean, dtype=np.float32)),
    ]:
        buffer = io.BytesIO()
        np.save(buffer, array)
        members[f"{member}.npy"] = buffer.getvalue()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "crafted.npz"
        path.write_bytes(zip_bytes(members))
        try:
            net = TwoLayerNet.load(path)
        except ModelFileError as err:
            message = str(err)
        else:
            message = None
    if message is not None:
        assert str(path) in message
        return
    pixels = np.array([[0.0] * 16, [255.0] * 16], dtype=np.float32)
    with np.errstate(all="raise"):  # an overflow here would be one in evaluate
        rows = net.preprocessing(pixels)
    assert np.all(np.isfinite(rows))
    assert np.all(np.abs(rows) <= 255)


# Damaged archives: compressed streams, flags, trailing bytes.


def compressed_data(data: bytes, member: str) -> tuple[int, int]:
    """Where ``member``'s compressed data starts in the archive ``data``, and its length."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(member)
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


MEMBERS = ["W1.npy", "b1.npy", "W2.npy", "b2.npy", "metadata.npy", "preprocessing_mean.npy"]
COMPRESSIONS = [zipfile.ZIP_DEFLATED, zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2]


@FUZZ
@given(member=st.sampled_from(MEMBERS), compression=st.sampled_from(COMPRESSIONS),
       data=st.data())  # fmt: skip
def test_corrupt_compressed_streams(model_bytes, member, compression, data):
    content = bytearray(zip_bytes(members_of(model_bytes), compression))
    start, length = compressed_data(bytes(content), member)
    for _ in range(data.draw(st.integers(1, 4))):
        content[start + data.draw(st.integers(0, length - 1))] ^= 1 << data.draw(st.integers(0, 7))
    load_bytes(bytes(content))


@FUZZ
@given(member=st.sampled_from(MEMBERS), bits=st.integers(1, 0xFFFF))
@example(member="W1.npy", bits=0x1)  # "encrypted": zipfile's RuntimeError
@example(member="b2.npy", bits=0x41)  # strong encryption: its NotImplementedError
def test_flag_bits(model_bytes, member, bits):
    """Any general-purpose flags, in the member's local header and central entry alike."""
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
        local, central = archive.getinfo(member).header_offset + 6, archive.start_dir
    while not model_bytes.startswith(member.encode(), central + 46):  # the next entry
        lengths = struct.unpack_from("<HHH", model_bytes, central + 28)  # name, extra, comment
        central += 46 + sum(lengths)
    content = bytearray(model_bytes)
    for at in (local, central + 8):
        flags = struct.unpack_from("<H", content, at)[0] | bits
        struct.pack_into("<H", content, at, flags)
    load_bytes(bytes(content))


@FUZZ
@given(member=st.sampled_from(MEMBERS), trailing=st.binary(min_size=1, max_size=64))
def test_trailing_bytes_are_refused(model_bytes, member, trailing):
    members = members_of(model_bytes)
    members[member] += trailing
    assert "after its data" in load_bytes(zip_bytes(members), refused=True)


# Files that would hang or fill memory: refused in under a second, within 100 MB,
# measured in a process of their own (a hang fails at its timeout, never blocks the run).

PROBE = """
import json, resource, sys, time, tracemalloc
from xpnet import TwoLayerNet
from xpnet.errors import ModelFileError

tracemalloc.start()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    TwoLayerNet.load(sys.argv[1])
    outcome = "loaded"
except ModelFileError as err:
    outcome = str(err)
seconds = time.perf_counter() - start
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"outcome": outcome, "seconds": seconds,
                  "traced": tracemalloc.get_traced_memory()[1], "grown": grown}))
"""


def huge_wrong_shape(model_bytes: bytes, path: Path, compression: int) -> None:
    """The model with a 400 MB ``W1`` of shape (10000, 5000) where (16, 5) belongs."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10_000, 5_000)}
    )
    zeros = bytes(4_000_000)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members_of(model_bytes).items():
            if name != "W1.npy":
                archive.writestr(name, content)
        info = zipfile.ZipInfo("W1.npy")
        info.compress_type = compression
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(400_000_000 // len(zeros)):
                member.write(zeros)


HOSTILE = {
    "FIFO": lambda model, path: os.mkfifo(path),
    "symlink to /dev/zero": lambda model, path: path.symlink_to("/dev/zero"),
    "symlink to /dev/urandom": lambda model, path: path.symlink_to("/dev/urandom"),
    "400 MB W1 of the wrong shape, stored": partial(huge_wrong_shape, compression=0),
    "400 MB W1 of the wrong shape, deflated": partial(huge_wrong_shape, compression=8),
}
REFUSAL = {"FIFO": "is a FIFO (named pipe), not a regular file",
           "symlink to /dev/zero": "is a character device, not a regular file",
           "symlink to /dev/urandom": "is a character device, not a regular file"}  # fmt: skip
WRONG_SHAPE = "W1 has shape (10000, 5000) and dtype float64, expected (16, 5) and float64"


@pytest.mark.parametrize("kind", HOSTILE)
def test_files_that_would_hang_or_fill_memory_are_refused_at_once(model_bytes, tmp_path, kind):
    path = tmp_path / "model.npz"
    HOSTILE[kind](model_bytes, path)
    done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    measured = json.loads(done.stdout)
    assert measured["outcome"].startswith(f"{path}: {REFUSAL.get(kind, WRONG_SHAPE)}")
    assert measured["seconds"] < 1.0
    assert measured["traced"] < 100e6
    assert measured["grown"] < 100e6
