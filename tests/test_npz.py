"""The archive layer of model files: damaged zips and members, each a ModelFileError
naming the file; what numpy writes (stored, deflated, Fortran order) still loads."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from test_model_file_fuzz import members_of, zip_bytes

from xpnet import TwoLayerNet, to_numpy
from xpnet.errors import ModelFileError


@pytest.fixture
def saved(tmp_path):
    """A saved network and its file's bytes."""
    net = TwoLayerNet(4, 6, 3, std=0.1, seed=0)
    path = tmp_path / "model.npz"
    net.save(path)
    return net, path.read_bytes()


def data_offset(data: bytes, member: str) -> int:
    """Where ``member``'s (compressed) data starts in the archive ``data``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        start = archive.getinfo(member).header_offset
    name_length, extra_length = struct.unpack("<HH", data[start + 26 : start + 30])
    return start + 30 + name_length + extra_length


def central_entry(data: bytes, member: str) -> int:
    """Where ``member``'s entry in the central directory starts."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        central = archive.start_dir
    while True:
        name_length = struct.unpack("<H", data[central + 28 : central + 30])[0]
        if data[central + 46 : central + 46 + name_length] == member.encode():
            return central
        extra_length, comment_length = struct.unpack("<HH", data[central + 30 : central + 34])
        central += 46 + name_length + extra_length + comment_length


def patched(data: bytes, member: str, local: int, central: int, change) -> bytes:
    """``data`` with ``change(bytearray, offset)`` applied at ``local`` in ``member``'s
    local header and at ``central`` in its central-directory entry alike."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        header = archive.getinfo(member).header_offset
    content = bytearray(data)
    change(content, header + local)
    change(content, central_entry(data, member) + central)
    return bytes(content)


def with_flag(data: bytes, member: str, bits: int) -> bytes:
    """``data`` with ``bits`` set in ``member``'s general-purpose flags."""

    def set_bits(content: bytearray, at: int) -> None:
        content[at] |= bits

    return patched(data, member, 6, 8, set_bits)


def load(tmp_path, data: bytes) -> str:
    """Load ``data`` as a model file; the ModelFileError's message, which names the file."""
    path = tmp_path / "crafted.npz"
    path.write_bytes(data)
    with pytest.raises(ModelFileError) as caught:
        TwoLayerNet.load(path)
    assert str(path) in str(caught.value)
    return str(caught.value)


def test_an_encrypted_flag_is_refused_not_a_runtime_error(saved, tmp_path):
    _, data = saved
    assert "W2 is encrypted" in load(tmp_path, with_flag(data, "W2.npy", 0x1))


def test_a_member_compressed_other_than_numpy_does_is_refused(saved, tmp_path):
    _, data = saved
    for method in (zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2):
        message = load(tmp_path, zip_bytes(members_of(data), method))
        assert f"compressed with method {method}" in message


def test_a_corrupt_deflate_stream_is_refused(saved, tmp_path):
    _, data = saved
    compressed = bytearray(zip_bytes(members_of(data), zipfile.ZIP_DEFLATED))
    compressed[data_offset(bytes(compressed), "b1.npy")] = 0xFF  # a block of reserved type
    assert "b1 cannot be read: Error -3" in load(tmp_path, bytes(compressed))


def test_a_corrupt_stored_member_fails_its_checksum(saved, tmp_path):
    _, data = saved
    content = bytearray(data)
    content[data_offset(data, "W1.npy") + 200] ^= 0xFF  # in W1's values, past its header
    assert "W1 cannot be read: Bad CRC-32" in load(tmp_path, bytes(content))


def test_trailing_bytes_after_a_members_data_are_refused(saved, tmp_path):
    _, data = saved
    members = members_of(data)
    members["b2.npy"] += b"\0" * 8
    assert "b2 has 8 bytes after its data" in load(tmp_path, zip_bytes(members))


def test_a_header_length_beyond_numpys_bound_is_refused_before_it_is_read(saved, tmp_path):
    _, data = saved
    members = members_of(data)
    members["W1.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
    assert "W1 has a 2,147,483,648-byte .npy header" in load(tmp_path, zip_bytes(members))


def test_a_deflated_member_claiming_more_than_deflate_can_hold_is_refused(saved, tmp_path):
    _, data = saved
    members = members_of(data)
    members["W1.npy"] = members["W1.npy"][:128] + b"\0" * (1 << 22)  # 4 MiB of zeros
    compressed = zip_bytes(members, zipfile.ZIP_DEFLATED)

    def claim_1000_bytes(content: bytearray, at: int) -> None:
        content[at : at + 4] = struct.pack("<I", 1000)

    crafted = patched(compressed, "W1.npy", 18, 20, claim_1000_bytes)  # the compressed size
    assert "W1 claims 4,194,432 bytes from 1,000 deflated: corrupt" in load(tmp_path, crafted)


def test_what_numpy_writes_loads_deflated_or_in_fortran_order(saved, tmp_path):
    net, data = saved
    members = members_of(data)
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(to_numpy(net.params["W1"])))
    members["W1.npy"] = buffer.getvalue()
    path = tmp_path / "compressed.npz"
    path.write_bytes(zip_bytes(members, zipfile.ZIP_DEFLATED))
    loaded = TwoLayerNet.load(path)
    for name, value in net.params.items():
        np.testing.assert_array_equal(loaded.params[name], to_numpy(value))
    assert loaded.params["W1"].flags.writeable


def test_a_file_that_is_no_zip_is_refused_in_one_message(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("W1 = [[0.1]]\n")
    with pytest.raises(ModelFileError) as caught:
        TwoLayerNet.load(path)
    assert str(caught.value).startswith(f"{path}: not an .npz model file (a zip archive")
