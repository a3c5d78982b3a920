"""Files written whole or not at all: a real process stopped mid-write leaves no trace."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from xpnet import TwoLayerNet
from xpnet._atomic import atomic_write, check_writable_directory

WRITER = textwrap.dedent(
    """
    import sys, time
    from xpnet._atomic import atomic_write

    with atomic_write(sys.argv[1]) as f:
        f.write(b"new" * 1000)
        print("writing", flush=True)
        time.sleep(60)
        f.write(b"never")
    """
)


def test_sigterm_during_a_save_leaves_the_old_file_and_no_part_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old model")
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline() == "writing\n"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGTERM  # ended by the signal, as it would have been
    assert path.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_a_directory_that_cannot_take_the_file_is_named_not_the_part_file(tmp_path):
    missing = tmp_path / "taken"
    missing.write_text("")  # a file where the directory should be
    with (
        pytest.raises(OSError, match=f"cannot write model.npz into {missing}") as caught,
        atomic_write(missing / "model.npz") as f,
    ):
        f.write(b"x")
    assert ".part" not in str(caught.value)


# Only regular files are written: nothing else is ever renamed over.


def make_special(kind, where):
    """Make a path of ``kind`` at ``where``; a function that says whether it is intact."""
    if kind == "FIFO":
        os.mkfifo(where)
        return lambda: stat.S_ISFIFO(os.lstat(where).st_mode)
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(where))
        return lambda: stat.S_ISSOCK(os.lstat(where).st_mode)
    if kind == "directory":
        where.mkdir()
        return lambda: where.is_dir() and not where.is_symlink()
    target = {"symlink to /dev/null": "/dev/null", "symlink to a directory": where.parent}[kind]
    where.symlink_to(target)
    return lambda: os.readlink(where) == str(target)


SPECIAL = ["FIFO", "socket", "directory", "symlink to /dev/null", "symlink to a directory"]


@pytest.mark.parametrize("kind", SPECIAL)
def test_a_target_that_is_not_a_regular_file_is_refused_before_writing(tmp_path, kind):
    where = tmp_path / "out.bin"
    intact = make_special(kind, where)
    with pytest.raises(OSError, match="not a regular file; xpnet writes a file whole"):
        atomic_write(where).__enter__()  # refused on entering, before a byte is written
    assert intact()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("kind", ["FIFO", "symlink to /dev/null", "directory"])
def test_save_refuses_a_target_that_is_not_a_regular_file(tmp_path, kind):
    where = tmp_path / "model.npz"
    intact = make_special(kind, where)
    with pytest.raises(OSError, match=f"cannot write {where}: it is a"):
        TwoLayerNet(4, 5, 3, seed=0).save(where)
    assert intact()
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_a_symlink_to_a_regular_file_is_followed_and_kept(tmp_path):
    (tmp_path / "runs").mkdir()
    real, link = tmp_path / "runs" / "model.npz", tmp_path / "latest.npz"
    real.write_bytes(b"old")
    link.symlink_to(real)
    with atomic_write(link) as f:
        f.write(b"new")
    assert os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(tmp_path / "runs" / "next.npz")
    with atomic_write(dangling) as f:
        f.write(b"made")
    assert os.readlink(dangling) == str(tmp_path / "runs" / "next.npz")
    assert (tmp_path / "runs" / "next.npz").read_bytes() == b"made"


def test_an_output_directory_that_is_a_device_is_called_one(tmp_path):
    (tmp_path / "out").symlink_to("/dev/null")
    with pytest.raises(NotADirectoryError, match="out is a character device; choose a directory"):
        check_writable_directory(tmp_path / "out")
    assert os.readlink(tmp_path / "out") == "/dev/null"
