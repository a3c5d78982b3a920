"""The IDX reader: valid files round-trip, bad ones raise DataError naming the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from xpnet.data import DataError, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture(params=["raw", "gz"])
def write(request, tmp_path):
    """Write bytes as an IDX file, plain or gzip-compressed; return its path."""

    def write(data: bytes, name: str = "file-idx3-ubyte"):
        if request.param == "gz":
            path = tmp_path / f"{name}.gz"
            path.write_bytes(gzip.compress(data))
        else:
            path = tmp_path / name
            path.write_bytes(data)
        return path

    return write


@pytest.mark.parametrize(
    ("dtype", "code"), [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C), (np.float64, 0x0E)]
)
def test_round_trip(write, dtype, code):
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    result = read_idx(write(idx_bytes(array, code)))
    assert result.dtype == dtype
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_result_is_writable(write):
    assert read_idx(write(idx_bytes(np.zeros((2, 2), np.uint8)))).flags.writeable


def test_expected_dimensions(write):
    path = write(idx_bytes(np.zeros((2, 2), np.uint8)))
    with pytest.raises(DataError, match="2 dimensions, expected 3"):
        read_idx(path, expect_ndim=3)


BAD_FILES = {
    "empty": (b"", "ends after 0 of 4 bytes"),
    "wrong magic": (b"\x00\x00\x07\x03" + bytes(12), "bad IDX magic number 0x00000703"),
    "nonzero lead bytes": (b"\x01\x00\x08\x01" + bytes(8), "bad IDX magic"),
    "zero dimensions": (b"\x00\x00\x08\x00", "bad IDX magic"),
    "truncated header": (b"\x00\x00\x08\x03\x00\x00", "ends after 2 of 12 bytes"),
    "truncated data": (idx_bytes(np.zeros((4, 5), np.uint8))[:-3], "truncated"),
    "wrong count": (
        struct.pack(">HBBI", 0, 8, 1, 100) + bytes(60),
        "truncated",
    ),
    "trailing data": (idx_bytes(np.zeros(3, np.uint8)) + b"\x00", "more data than"),
    "huge dimensions": (struct.pack(">HBBIIII", 0, 8, 4, *[2**32 - 1] * 4), "header declares"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_raise_data_error_naming_the_file(write, case):
    data, message = BAD_FILES[case]
    path = write(data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(1000, np.uint8)))[:-20])
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not a gzip file")
    with pytest.raises(DataError, match="not a readable gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nothing.gz")
