"""Downloads, for real, from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading

import pytest

from xpnet._wording import command_line
from xpnet.data import DATASETS, DataError, fetch, read_data_sets, verify
from xpnet.data.download import download
from xpnet.data.store import check_files

NAMES = list(DATASETS["mnist"].sha256)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """Serve a directory over HTTP on 127.0.0.1; return its base URL."""
    servers = []

    def serve(directory):
        handler = functools.partial(QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mnist_mirror(monkeypatch, serve, mnist_dir):
    """Point MNIST's mirrors at a local server of the real files."""
    url = serve(mnist_dir)
    dataset = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", type(dataset)(**{**dataset.__dict__, "mirrors": (url,)}))
    return url


@pytest.mark.mnist
def test_fetch_downloads_and_verifies_into_the_cache(tmp_path, monkeypatch, mnist_mirror, capsys):
    monkeypatch.delenv("XPNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    directory = fetch()
    assert directory == tmp_path / "cache" / "xpnet" / "mnist"
    assert sorted(p.name for p in directory.iterdir()) == sorted(NAMES)
    assert all(verify(data_dir=directory).values())
    assert "MiB" in capsys.readouterr().err  # the progress bar


@pytest.mark.mnist
def test_fetch_only_downloads_missing_files(tmp_path, mnist_mirror, mnist_dir):
    shutil.copy(mnist_dir / NAMES[0], tmp_path / NAMES[0])
    before = (tmp_path / NAMES[0]).stat().st_mtime_ns
    fetch(data_dir=tmp_path, progress=False)
    assert (tmp_path / NAMES[0]).stat().st_mtime_ns == before
    assert all(verify(data_dir=tmp_path).values())


@pytest.mark.mnist
def test_a_corrupted_download_leaves_nothing(tmp_path, serve, mnist_dir):
    corrupt = tmp_path / "mirror"
    corrupt.mkdir()
    data = bytearray((mnist_dir / NAMES[1]).read_bytes())
    data[-100] ^= 0xFF
    (corrupt / NAMES[1]).write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="could not download") as info:
        download(
            NAMES[1],
            [serve(corrupt)],
            cache / NAMES[1],
            DATASETS["mnist"].sha256[NAMES[1]],
            progress=False,
        )
    assert list(cache.iterdir()) == []
    assert "gzip data is corrupt" in str(info.value)


@pytest.mark.mnist
def test_a_file_that_does_not_match_its_checksum_leaves_nothing(tmp_path, serve, mnist_dir):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="SHA-256 of the payload is"):
        # the test-label file served under the training-label name
        download(
            NAMES[3],
            [serve(mnist_dir)],
            cache / NAMES[1],
            DATASETS["mnist"].sha256[NAMES[1]],
            progress=False,
        )
    assert list(cache.iterdir()) == []


@pytest.mark.mnist
def test_the_next_mirror_is_tried(tmp_path, serve, mnist_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = download(
        NAMES[3],
        [serve(empty), serve(mnist_dir)],
        tmp_path / "out" / NAMES[3],
        DATASETS["mnist"].sha256[NAMES[3]],
        progress=False,
    )
    assert verify(data_dir=path.parent)[NAMES[3]]


def test_an_unreachable_mirror_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="from any of 1 mirrors") as info:
        download(
            NAMES[3],
            ["http://127.0.0.1:9/"],
            tmp_path / NAMES[3],
            "0" * 64,
            progress=False,
            timeout=5,
        )
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def unreachable(monkeypatch):
    dataset = DATASETS["mnist"]
    mirrors = ("http://127.0.0.1:9/", "http://127.0.0.1:9/b/", "http://127.0.0.1:9/c/")
    monkeypatch.setitem(
        DATASETS, "mnist", type(dataset)(**{**dataset.__dict__, "mirrors": mirrors})
    )


#: How messages name the data directory's setting and the download, from Python and from
#: the command line (within xpnet._wording.command_line, as the ``xpnet`` command runs).
WORDING = {
    "python": ("data_dir", "xpnet.data.fetch(dataset='mnist')"),
    "command line": ("--data-dir", "`xpnet data --dataset mnist`"),
}


def worded(caller):
    return command_line() if caller == "command line" else contextlib.nullcontext()


@pytest.mark.parametrize("caller", list(WORDING))
def test_a_failed_fetch_says_where_the_files_belong(tmp_path, monkeypatch, caller):
    unreachable(monkeypatch)
    monkeypatch.delenv("XPNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError) as info, worded(caller):
        fetch(progress=False)
    message = str(info.value)
    assert str(tmp_path / "cache" / "xpnet" / "mnist") in message
    for hint in ("XPNET_DATA", *WORDING[caller]):
        assert hint in message
    if caller == "python":
        assert "--" not in message
        assert "`xpnet" not in message
    assert "\n" not in message
    assert len(message) < 600


@pytest.mark.parametrize("caller", list(WORDING))
@pytest.mark.parametrize("named_by", ["argument", "XPNET_DATA"])
def test_a_data_directory_the_user_named_must_exist(tmp_path, monkeypatch, named_by, caller):
    unreachable(monkeypatch)
    misspelt = tmp_path / "mnsit"
    if named_by == "XPNET_DATA":
        monkeypatch.setenv("XPNET_DATA", str(misspelt))
    setting = WORDING[caller][0] if named_by == "argument" else named_by
    expected = f"{misspelt} (from {setting}) does not exist; create it, or fix {setting}"
    with pytest.raises(DataError, match=re.escape(expected)), worded(caller):
        fetch(data_dir=misspelt if named_by == "argument" else None, progress=False)
    assert not misspelt.exists()


def test_the_lab_call_on_a_missing_directory_speaks_of_its_argument(tmp_path, monkeypatch):
    """``read_data_sets('mnist_data')`` from Python: the argument, no command-line option."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        read_data_sets("mnist_data")
    message = str(info.value)
    assert "mnist_data (from data_dir) does not exist; create it, or fix data_dir" in message
    assert "--" not in message


def test_the_command_line_names_its_option(tmp_path):
    """``xpnet data --data-dir`` on a missing directory, run as a user runs it."""
    missing = tmp_path / "mnsit"
    done = subprocess.run([sys.executable, "-m", "xpnet.cli", "data", "--data-dir", str(missing)],
                          capture_output=True, text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 1
    expected = f"{missing} (from --data-dir) does not exist; create it, or fix --data-dir"
    assert expected in done.stderr
    assert not missing.exists()


def test_a_missing_file_says_how_to_download_it_in_the_callers_words(tmp_path):
    for caller, (_, download_hint) in WORDING.items():
        with pytest.raises(DataError) as info, worded(caller):
            check_files(data_dir=tmp_path, dataset="mnist")
        assert f"is missing from {tmp_path}; download it with {download_hint}" in str(info.value)
