"""Downloads, for real, from a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from xpnet.data import DATASETS, DataError, fetch, verify
from xpnet.data.download import download

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


def test_a_failed_fetch_says_where_the_files_belong(tmp_path, monkeypatch):
    unreachable(monkeypatch)
    monkeypatch.delenv("XPNET_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError) as info:
        fetch(progress=False)
    message = str(info.value)
    assert str(tmp_path / "cache" / "xpnet" / "mnist") in message
    for hint in ("XPNET_DATA", "--data-dir", "`xpnet data`"):
        assert hint in message
    assert "\n" not in message
    assert len(message) < 600


@pytest.mark.parametrize("named_by", ["--data-dir", "XPNET_DATA"])
def test_a_data_directory_the_user_named_must_exist(tmp_path, monkeypatch, named_by):
    unreachable(monkeypatch)
    misspelt = tmp_path / "mnsit"
    if named_by == "XPNET_DATA":
        monkeypatch.setenv("XPNET_DATA", str(misspelt))
    with pytest.raises(DataError, match=f"{misspelt} \\(from {named_by}\\) does not exist"):
        fetch(data_dir=misspelt if named_by == "--data-dir" else None, progress=False)
    assert not misspelt.exists()
