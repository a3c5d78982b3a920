"""Fuzzing the IDX reader: whatever the bytes, only DataError, quickly, in bounded memory."""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xpnet.data import DataError, read_idx

FUZZ = settings(
    max_examples=int(os.environ.get("XPNET_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def read_bytes_as_file(data: bytes, suffix: str) -> None:
    """Write ``data`` to a file and read it; anything but success or DataError fails."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz-idx{suffix}"
        path.write_bytes(data)
        try:
            read_idx(path)
        except DataError as err:
            message = str(err)
        else:
            return
    assert str(path) in message


@pytest.fixture(scope="module")
def real_files(mnist_dir):
    """Real MNIST bytes: the small label files whole, the images' first 64 KiB."""
    labels = {
        name: (mnist_dir / name).read_bytes()
        for name in ("t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz")
    }
    raw_labels = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as f:
        head = f.read(65536)
    return {**labels, "raw-labels": raw_labels, "raw-images-head": head}


@FUZZ
@given(data=st.binary(max_size=512), gz=st.booleans())
def test_random_bytes(data, gz):
    read_bytes_as_file(data, ".gz" if gz else "")


@FUZZ
@given(
    type_code=st.integers(0, 255),
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=6),
    body=st.binary(max_size=256),
    gz=st.booleans(),
)
def test_random_headers(type_code, dims, body, gz):
    header = struct.pack(">HBB", 0, type_code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    data = header + body
    read_bytes_as_file(gzip.compress(data) if gz else data, ".gz" if gz else "")


@pytest.mark.mnist
@FUZZ
@given(data=st.data())
def test_truncated_real_files(real_files, data):
    name = data.draw(st.sampled_from(sorted(real_files)))
    content = real_files[name]
    cut = data.draw(st.integers(0, len(content) - 1))
    read_bytes_as_file(content[:cut], ".gz" if name.endswith(".gz") else "")


@pytest.mark.mnist
@FUZZ
@given(data=st.data())
def test_bit_flipped_real_files(real_files, data):
    name = data.draw(st.sampled_from(sorted(real_files)))
    content = bytearray(real_files[name])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] ^= 1 << data.draw(st.integers(0, 7))
    read_bytes_as_file(bytes(content), ".gz" if name.endswith(".gz") else "")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_declared_sizes_are_refused_before_allocating(tmp_path, gz):
    header = struct.pack(">HBBIIII", 0, 0x0E, 4, 2**31, 2**31, 2**31, 2**31)  # 2**127 bytes
    data = header + bytes(1000)
    path = tmp_path / ("huge-idx.gz" if gz else "huge-idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="header declares"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_shape_past_numpys_largest_array_with_a_zero_side_is_refused(tmp_path):
    """No data (a zero side), but sides NumPy refuses to reshape to: found by the fuzzing."""
    dims = (0, 2, 33557, 33665, 33776, 60431)
    path = tmp_path / "zero-side-idx"
    path.write_bytes(struct.pack(">HBB6I", 0, 0x0B, len(dims), *dims))
    with pytest.raises(DataError, match="larger than any array"):
        read_idx(path)


def test_a_gzip_bomb_claim_is_refused(tmp_path):
    """A small gzip file whose header claims 1 GB: refused by the compression bound."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 8, 1, 10**9) + bytes(100)))
    with pytest.raises(DataError, match="header declares"):
        read_idx(path)
