"""``xpnet serve``'s HTTP, through raw sockets to a real server process: malformed and
oversized requests get a 4xx with a JSON error and never a 500, slow clients get 408 and
lose their connection, clients that reset leave nothing held and print nothing."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from pathlib import Path

import pytest
from serving import (
    IMAGE,
    JSON_HEADERS,
    address,
    head,
    post_json,
    raw,
    request,
    start,
    status_and_error,
    stop,
    train_model,
)

from xpnet.serve import MAX_BODY_BYTES

pytestmark = [pytest.mark.serve, pytest.mark.mnist]

#: Seconds a request's head or body may take (xpnet/serve/_protocol.py, _app.py).
DEADLINE = 10


@pytest.fixture(scope="module")
def served(tmp_path_factory, mnist_dir):
    running = start(train_model(tmp_path_factory.mktemp("serve"), mnist_dir))
    yield running
    code, err = stop(running)
    assert err.strip().splitlines() == ["xpnet serve: stopped"]  # nothing else, ever
    assert code == 130


@pytest.fixture
def server(served):
    return served.url


BODY = json.dumps({"image": IMAGE}).encode()


def post(url: str, *headers: str, body: bytes = BODY) -> bytes:
    """A raw ``POST /predict`` with this server's Host, JSON, and ``headers``."""
    lines = [head(url).split(b"\r\n")[1].decode(), "Content-Type: application/json", *headers]
    return b"POST /predict HTTP/1.1\r\n" + "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


PARSING = {
    "two Content-Lengths that differ": (
        lambda url: post(url, f"Content-Length: {len(BODY)}", "Content-Length: 5"),
        400, "two that differ",
    ),
    "a Content-Length of superscript digits": (
        lambda url: post(url, "Content-Length: \u00b2"), 400, "not a byte count",
    ),
    "a Content-Length of 5,000 digits": (
        lambda url: post(url, "Content-Length: " + "9" * 5000), 400, "not a byte count",
    ),
    "a Content-Length of 5,000 zeros and the length": (
        lambda url: post(url, "Content-Length: " + "0" * 5000 + str(len(BODY))),
        400, "not a byte count",
    ),
    "Transfer-Encoding and Content-Length": (
        lambda url: post(url, "Transfer-Encoding: chunked", "Content-Length: 3",
                         body=chunked(BODY)),
        400, "both Transfer-Encoding and Content-Length",
    ),
    "no Host in HTTP/1.1": (lambda url: b"GET /model HTTP/1.1\r\n\r\n", 400, "no Host"),
    "no Host in HTTP/1.0": (lambda url: b"GET /model HTTP/1.0\r\n\r\n", 400, "one Host header"),
    "an empty Host": (lambda url: b"GET /model HTTP/1.1\r\nHost: \r\n\r\n", 400, "one Host"),
    "two Hosts": (
        lambda url: head(url).replace(b"\r\n\r\n", b"\r\nHost: evil.example\r\n\r\n"),
        400, "not HTTP/1.1",
    ),
    "headers over 16 KiB": (
        lambda url: head(url).replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n"),
        431, "at most 16384",
    ),
    "a target over 16 KiB": (
        lambda url: head(url, "/model?" + "a" * 17_000), 431, "at most 16384",
    ),
    "headers over 16 KiB that never end": (
        lambda url: head(url).replace(b"\r\n\r\n", b"\r\nX-Big: " + b"a" * 70_000),
        400, "headers over 16384 bytes",
    ),
    "a malformed request line": (lambda url: b"GARBAGE\r\n\r\n", 400, "request line"),
    "a bad HTTP version": (lambda url: b"GET / HTTP/x.y\r\n\r\n", 400, "request line"),
    "a header without a colon": (
        lambda url: head(url).replace(b"\r\n\r\n", b"\r\nno colon\r\n\r\n"), 400, "header",
    ),
    "a body over the limit": (
        lambda url: post(url, f"Content-Length: {MAX_BODY_BYTES + 1}",
                         body=b" " * (MAX_BODY_BYTES + 1)),
        413, f"at most {MAX_BODY_BYTES}",
    ),
    "a chunked body over the limit": (
        lambda url: post(url, "Transfer-Encoding: chunked",
                         body=chunked(b" " * (MAX_BODY_BYTES + 1))),
        413, f"at most {MAX_BODY_BYTES}",
    ),
    "a Content-Length of 10**14 and a short body": (
        lambda url: post(url, "Content-Length: 100000000000000"), 413, f"at most {MAX_BODY_BYTES}",
    ),
    "a POST without Content-Length (an empty body)": (
        lambda url: post(url, "Connection: close", body=b""), 400, "not valid JSON",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PARSING))
def test_malformed_and_oversized_requests_get_4xx_with_a_json_error(server, case):
    make, code, message = PARSING[case]
    answer = raw(server, make(server))
    status, error = status_and_error(answer)
    assert (status, message in error) == (code, True), (status, error)
    assert b"Traceback" not in answer
    assert post_json(server, "/predict", {"image": IMAGE})[0] == 200  # and it still answers


def test_a_chunked_json_body_is_read(server):
    answer = raw(server, post(server, "Transfer-Encoding: chunked", "Connection: close",
                              body=chunked(BODY)))  # fmt: skip
    head_, _, body = answer.partition(b"\r\n\r\n")
    assert head_.startswith(b"HTTP/1.1 200")
    assert len(json.loads(body)["probabilities"]) == 10


ROUTES = {
    "GET /predict": (("GET", "/predict", None), 405, "/predict takes POST, not GET"),
    "PUT /predict": (("PUT", "/predict", BODY), 405, "takes POST"),
    "DELETE /": (("DELETE", "/", None), 405, "/ takes GET or HEAD, not DELETE"),
    "an unknown method": (("BREW", "/predict", None), 405, "not BREW"),
    "POST /": (("POST", "/", BODY), 405, "takes GET"),
    "an unknown path": (("GET", "/admin", None), 404, "no such page: /admin"),
    "a path outside the package": (("GET", "/../../etc/passwd", None), 404, "no such page"),
}


@pytest.mark.parametrize("case", list(ROUTES))
def test_other_paths_and_methods_get_404_or_405(server, case):
    (method, path, body), code, message = ROUTES[case]
    status, headers, answer = request(server, method, path, body, JSON_HEADERS)
    assert status == code
    assert message in json.loads(answer)["error"]
    if code == 405:
        assert headers["allow"] in ("POST", "GET, HEAD")


def test_slow_clients_get_408_and_lose_their_connection_while_others_are_answered(server):
    """Slowloris: clients that send a request's head, or its body, a byte at a time."""
    image_head = post(server, f"Content-Length: {len(BODY)}", body=b"")
    slow = []
    for i in range(200):
        sock = socket.create_connection(address(server))
        sock.sendall(image_head + BODY[:10] if i % 2 else head(server)[:20])
        slow.append(sock)
    started = time.monotonic()
    for _ in range(5):  # they do not keep anyone else waiting
        assert post_json(server, "/predict", {"image": IMAGE})[0] == 200
    for sock in slow[:20]:  # dripping a byte a second does not extend the deadline
        sock.sendall(b"X-A: b\r\n" if sock is slow[0] else b" ")
    answers = []
    for sock in slow:
        sock.settimeout(DEADLINE + 20)
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes it
            answer += chunk
        sock.close()
        answers.append(answer)
    assert time.monotonic() - started < DEADLINE + 10
    for i, answer in enumerate(answers):
        status, error = status_and_error(answer)
        assert status == 408
        if i % 2:
            assert f"the body did not arrive within {DEADLINE} s" in error
        else:
            assert f"has {DEADLINE // 2} to {DEADLINE} s for them" in error


def descriptors_and_threads(pid: int) -> tuple[int, int]:
    proc = Path(f"/proc/{pid}")
    return len(os.listdir(proc / "fd")), len(os.listdir(proc / "task"))


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client that dies does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux's /proc")
def test_clients_that_reset_leave_no_thread_or_descriptor_held_and_print_nothing(served):
    server = served.url
    seven = json.dumps({"strokes": [[[80, 60], [200, 60], [120, 230]]]}).encode()
    draw = post(server, f"Content-Length: {len(seven)}", body=seven).replace(b"predict", b"draw")
    stages = [
        head(server)[:10],  # mid request line
        post(server, f"Content-Length: {len(BODY)}", body=BODY[:100]),  # mid body
        post(server, f"Content-Length: {len(BODY)}"),  # whole, the answer never read
        draw,  # while the network computes
    ]
    for _ in range(3):  # the worker threads started, as after any use
        assert post_json(server, "/draw", json.loads(seven))[0] == 200
    before = descriptors_and_threads(served.process.pid)
    for i in range(200):
        sock = socket.create_connection(address(server))
        sock.sendall(stages[i % len(stages)])
        reset(sock)
    assert post_json(server, "/predict", {"image": IMAGE})[0] == 200
    for _ in range(150):  # idle worker threads end after 10 s
        after = descriptors_and_threads(served.process.pid)
        if after <= before:
            break
        time.sleep(0.1)
    assert after[0] <= before[0], (before, after)
    assert after[1] <= before[1], (before, after)
    assert served.err == []  # no traceback, no line at all


def test_ctrl_c_with_slow_clients_connected_stops_at_once_printing_one_line(tmp_path, mnist_dir):
    running = start(train_model(tmp_path, mnist_dir))
    slow = [
        post(running.url, "Content-Length: 100", body=b"{"),  # a body still arriving
        head(running.url)[:12],  # a request line still arriving
        post(running.url, "Content-Length: 100000000000000", body=b"{"),  # one being refused
    ]
    connections = []
    for data in slow:
        connections.append(socket.create_connection(address(running.url)))
        connections[-1].sendall(data)
    assert post_json(running.url, "/predict", {"image": IMAGE})[0] == 200
    started = time.monotonic()
    code, err = stop(running)
    assert time.monotonic() - started < 5  # uvicorn's grace period for requests: not waited
    assert (code, err) == (130, "xpnet serve: stopped")
    for sock in connections:
        sock.close()
