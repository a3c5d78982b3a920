"""Files written whole or not at all: a real process stopped mid-write leaves no trace."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from xpnet._atomic import atomic_write

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
