"""What the ``xpnet serve`` tests share: a trained model, the server as a real process
started as a user starts it, requests through ``http.client`` and raw sockets, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: A name the browser resolves to 127.0.0.1 (``--host-resolver-rules``), as a DNS
#: rebinding attacker's name resolves once the page is loaded.
REBOUND_NAME = "rebind.test"

JSON_HEADERS = {"Content-Type": "application/json"}
IMAGE = [[0] * 28 for _ in range(28)]


def train_model(directory: Path, mnist_dir: Path) -> Path:
    """A network trained on real MNIST by the fast recipe (about a second), saved."""
    from xpnet.pipeline import run

    result = run("fast", data_dir=mnist_dir, dtype="float32")
    assert result.val_acc > 0.97
    path = directory / "model.npz"
    result.net.save(path, result.metadata())
    return path


@dataclass
class Server:
    """``xpnet serve`` running: its process, its URL, and what it printed so far (read by
    threads, so that a pipe nobody reads never blocks it)."""

    process: subprocess.Popen[str]
    url: str
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return address(self.url)

    def requests_logged(self) -> list[str]:
        """The request lines ``--log-requests`` printed: ``METHOD PATH STATUS``."""
        lines = [line.split(" - ", 1)[1] for line in self.out if " - " in line]
        return [line.replace('"', "").replace(" HTTP/1.1", "") for line in lines]

    def logged_since(self, before: int, count: int) -> list[str]:
        """The request lines after the first ``before``, once there are ``count`` of them
        (or after 5 s): a thread reads the log, after the client has its answer."""
        for _ in range(100):
            if len(self.requests_logged()) >= before + count:
                break
            time.sleep(0.05)
        return self.requests_logged()[before:]


def start(model_path: Path, *args: str) -> Server:
    """``xpnet serve MODEL --port 0 ...`` as a user runs it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "xpnet.cli", "serve", str(model_path), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first: queue.Queue[str] = queue.Queue()
    out: list[str] = []
    err: list[str] = []

    def read(stream, lines: list[str], tell: bool) -> None:
        for line in stream:
            if tell and not lines:
                first.put(line)
            lines.append(line.rstrip("\n"))
        if tell and not lines:
            first.put("")

    threading.Thread(target=read, args=(process.stdout, out, True), daemon=True).start()
    threading.Thread(target=read, args=(process.stderr, err, False), daemon=True).start()
    line = first.get(timeout=120)
    if "http://" not in line:
        process.kill()
        process.wait()
        raise AssertionError(f"no URL printed: {line!r} {err}")
    return Server(process, line.split(" on ", 1)[1].split()[0], out, err)


def stop(server: Server) -> tuple[int, str]:
    """Ctrl-C, as a terminal sends it; the exit status and stderr."""
    server.process.send_signal(signal.SIGINT)
    try:
        code = server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise
    for stream in (server.process.stdout, server.process.stderr):
        stream.close()
    return code, "\n".join(server.err)


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    return host.strip("[]"), int(port)


def request(url, method, path, body=None, headers=None):
    """One HTTP request; (status, headers with lowercase names, body bytes)."""
    connection = http.client.HTTPConnection(*address(url), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post_json(url, path, value, headers=None):
    """A JSON POST as the page sends it; (status, the answer's JSON)."""
    status, _, body = request(
        url, "POST", path, json.dumps(value), {**JSON_HEADERS, **(headers or {})}
    )
    return status, json.loads(body)


def raw(url: str, data: bytes, shut: bool = False, timeout: float = 30) -> bytes:
    """Bytes sent as they are, for requests http.client will not make; all bytes answered
    until the server closes the connection."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_error(answer: bytes) -> tuple[int, str]:
    """The status of the first answer in ``answer``, and its JSON ``error``."""
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = dict(
        line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
    )
    assert headers.get(b"content-type") == b"application/json", head
    length = int(headers[b"content-length"])
    return int(head.split()[1]), json.loads(body[:length])["error"]


def head(url: str, path: str = "/model") -> bytes:
    """A GET request as a client sends it, with this server's Host."""
    host, port = address(url)
    name = f"[{host}]" if ":" in host else host
    return f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\n\r\n".encode()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright, with :data:`REBOUND_NAME` resolving to
    127.0.0.1."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[f"--host-resolver-rules=MAP {REBOUND_NAME} 127.0.0.1"],
        )
        yield browser
        browser.close()
