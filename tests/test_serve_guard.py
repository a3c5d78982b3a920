"""Who may use ``xpnet serve``: its own page only. Over HTTP, other Host names (DNS
rebinding), other origins and other content types are refused before anything is
computed; in Debian's Chromium, a page served from another origin, or reached through a
rebound name, gets no answer and makes the server compute nothing (its request log says)."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from serving import (
    IMAGE,
    JSON_HEADERS,
    REBOUND_NAME,
    address,
    chromium,
    post_json,
    request,
    start,
    stop,
    train_model,
)

pytestmark = [pytest.mark.serve, pytest.mark.mnist]


@pytest.fixture(scope="module")
def model(tmp_path_factory, mnist_dir):
    return train_model(tmp_path_factory.mktemp("serve"), mnist_dir)


@pytest.fixture(scope="module")
def served(model):
    running = start(model, "--log-requests")
    yield running
    code, err = stop(running)
    assert err.strip().splitlines() == ["xpnet serve: stopped"]
    assert code == 130


@pytest.fixture
def server(served):
    return served.url


BODY = json.dumps({"image": IMAGE})
OTHER_HOSTS = [
    "evil.example", "attacker.com:8000", "127.0.0.1.nip.io", "localhost@evil",
    "localhost.evil.example", "[::2]", "127.0.0.2", "0.0.0.0",
]  # fmt: skip


@pytest.mark.parametrize("host", OTHER_HOSTS)
def test_other_host_names_are_refused_421_dns_rebinding(served, host):
    before = len(served.requests_logged())
    for method, path, body in [("GET", "/", None), ("GET", "/model", None),
                               ("POST", "/predict", BODY)]:  # fmt: skip
        status, _, answer = request(served.url, method, path, body, {**JSON_HEADERS, "Host": host})
        assert status == 421
        error = json.loads(answer)["error"]
        assert f"not Host {host!r}" in error
        assert "--allowed-host" in error
    assert served.logged_since(before, 3) == ["GET / 421", "GET /model 421", "POST /predict 421"]


def test_this_machines_own_names_are_answered(server):
    port = address(server)[1]
    for host in ["127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}",
                 f"[::1]:{port}", f"[0:0::1]:{port}", "localhost"]:  # fmt: skip
        status, answer = post_json(server, "/predict", {"image": IMAGE}, {"Host": host})
        assert status == 200, host
        assert len(answer["probabilities"]) == 10


def test_allowed_hosts_and_the_host_it_listens_on_are_answered(model):
    running = start(model, "--host", "127.0.0.2", "--allowed-host", "Digits.Example.org",
                    "--allowed-host", "[::3]")  # fmt: skip
    try:
        port = address(running.url)[1]
        for host, code in [
            (f"127.0.0.2:{port}", 200), (f"digits.example.org:{port}", 200), ("[::3]", 200),
            ("evil.example", 421), ("digits.example.org.evil", 421),
        ]:  # fmt: skip
            assert post_json(running.url, "/predict", {"image": IMAGE}, {"Host": host})[0] == code
    finally:
        code, err = stop(running)
    assert (code, err) == (130, "xpnet serve: stopped")  # 127.0.0.2 is loopback: no warning


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1.evil.example",
     "http://localhost", "file://"],
)  # fmt: skip
def test_other_origins_are_refused_403_before_anything_is_read(served, origin):
    before = len(served.requests_logged())
    for path in ("/predict", "/draw"):
        status, headers, answer = request(
            served.url, "POST", path, BODY, {**JSON_HEADERS, "Origin": origin}
        )
        assert status == 403
        assert f"origin {origin} are refused" in json.loads(answer)["error"]
        assert not [name for name in headers if name.startswith("access-control-")]
    assert served.logged_since(before, 2) == ["POST /predict 403", "POST /draw 403"]


def test_its_own_origin_and_clients_without_one_are_answered(server):
    host = server.removeprefix("http://").rstrip("/")
    port = address(server)[1]
    for headers in (
        {"Origin": f"http://{host}"},
        {"Host": f"LocalHost:{port}", "Origin": f"http://localhost:{port}"},  # any case
        {"Host": f"localhost:{port}", "Origin": f"HTTP://LOCALHOST:{port}"},
        {},  # curl, a script
    ):
        assert post_json(server, "/predict", {"image": IMAGE}, headers)[0] == 200, headers


@pytest.mark.parametrize(
    "kind",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "text/json", "application/json-seq", None],
)  # fmt: skip
def test_posts_other_than_json_are_refused_415(served, kind):
    headers = {"Content-Type": kind} if kind else {}
    before = len(served.requests_logged())
    for path in ("/predict", "/draw"):
        status, _, answer = request(served.url, "POST", path, BODY, headers)
        assert status == 415
        assert "Content-Type: application/json" in json.loads(answer)["error"]
    assert served.logged_since(before, 2) == ["POST /predict 415", "POST /draw 415"]
    for fine in ("application/json; charset=utf-8", "Application/JSON"):
        status, _, _ = request(served.url, "POST", "/predict", BODY, {"Content-Type": fine})
        assert status == 200


def test_every_answer_forbids_framing_and_names_no_server_version(server):
    port = address(server)[1]
    for method, path, headers in [
        ("GET", "/", {}), ("GET", "/app.js", {}), ("GET", "/nothing", {}),
        ("POST", "/predict", JSON_HEADERS), ("GET", "/", {"Host": "evil.example"}),
        ("POST", "/draw", {**JSON_HEADERS, "Origin": "null"}),
        ("OPTIONS", "/predict", {"Origin": f"http://127.0.0.1:{port}",
                                 "Access-Control-Request-Method": "POST"}),
    ]:  # fmt: skip
        _, got, _ = request(server, method, path, BODY if method == "POST" else None, headers)
        assert "frame-ancestors 'none'" in got["content-security-policy"], (method, path)
        assert got["x-frame-options"] == "DENY"
        assert got["x-content-type-options"] == "nosniff"
        assert "server" not in got
        assert not [name for name in got if name.startswith("access-control-")]


# In a real browser: a page on another origin, and a page reached by a rebound name.

ATTACK = """<!doctype html><html><body><iframe id="frame"></iframe><script>
async function attempt(url, options) {
  try {
    const response = await fetch(url, options);
    return {type: response.type, status: response.status, text: await response.text()};
  } catch (err) {
    return {error: String(err)};
  }
}
</script></body></html>"""


@pytest.fixture
def other_origin(tmp_path):
    """A second local web server, on another port: another origin, as an attacker's."""
    (tmp_path / "attack.html").write_text(ATTACK)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{web.server_address[1]}"
    web.shutdown()
    web.server_close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def test_a_page_on_another_origin_gets_no_answer_and_nothing_is_computed(
    served, browser, other_origin
):
    page = browser.new_page()
    page.goto(f"{other_origin}/attack.html")
    before = len(served.requests_logged())
    victim = served.url.rstrip("/")
    drawing = json.dumps({"strokes": [[[80, 60], [200, 60], [120, 230]]]})
    results = {}
    for path, body in (("/predict", BODY), ("/draw", drawing)):
        for name, options in {
            "text/plain": {"method": "POST", "body": body},
            "no-cors": {"method": "POST", "body": body, "mode": "no-cors"},
            "JSON": {"method": "POST", "body": body,
                     "headers": {"Content-Type": "application/json"}},
        }.items():  # fmt: skip
            results[path, name] = page.evaluate(
                "([url, options]) => attempt(url, options)", [victim + path, options]
            )
    for key, result in results.items():
        # refused by the browser (no CORS header), or an opaque answer it cannot read
        assert result.get("error", "").startswith("TypeError") or (
            result["type"] == "opaque" and result["status"] == 0 and result["text"] == ""
        ), (key, result)
    # the frame: nothing shows in it, its answer forbids framing
    page.evaluate("url => { document.getElementById('frame').src = url; }", victim + "/")
    page.wait_for_timeout(500)
    assert not [frame for frame in page.frames if frame.url.startswith(victim)]
    # a form, which navigates the page to the server's answer (the attacker reads nothing)
    for enctype in ("text/plain", "application/x-www-form-urlencoded"):
        page.goto(f"{other_origin}/attack.html")
        with page.expect_navigation():
            page.evaluate(
                """([url, enctype]) => {
                  const form = document.createElement("form");
                  form.method = "POST"; form.action = url; form.enctype = enctype;
                  const field = document.createElement("input");
                  field.name = '{"strokes": [[[1, 2]]], "x": "'; field.value = '"}';
                  form.append(field); document.body.append(form); form.submit();
                }""",
                [victim + "/draw", enctype],
            )
        assert "are refused" in page.content()
    page.close()
    # The server's log: each request arrived, and was refused before anything was read.
    log = served.logged_since(before, 10)
    posts = [line for line in log if line.startswith("POST")]
    assert sorted(posts) == sorted(["POST /predict 403"] * 2 + ["POST /draw 403"] * 4), (
        log
    )  # text/plain and no-cors of each, the two forms; JSON stopped at its preflight
    assert log.count("OPTIONS /predict 403") == log.count("OPTIONS /draw 403") == 1, log
    assert "GET / 200" in log  # the frame was fetched, and not shown
    assert not [line for line in log if line.endswith(" 200") and line != "GET / 200"], log


def test_a_page_reached_by_a_rebound_name_gets_nothing(served, browser):
    """DNS rebinding: the browser takes the server for the attacker's (its name), so the
    same-origin policy protects nothing; the Host check refuses it."""
    port = address(served.url)[1]
    page = browser.new_page()
    response = page.goto(f"http://{REBOUND_NAME}:{port}/")
    assert response.status == 421
    assert "DNS rebinding" in page.content()
    before = len(served.requests_logged())
    result = page.evaluate(
        """(body) => fetch("/predict", {method: "POST", body,
             headers: {"Content-Type": "application/json"}})
           .then(async r => ({status: r.status, text: await r.text()}))""",
        BODY,
    )
    assert result["status"] == 421
    assert "probabilities" not in result["text"]
    log = served.logged_since(before, 1)
    posts = [line for line in log if line.startswith("POST")]
    assert posts  # Chromium sends a request answered 421 once more, on a new connection
    assert set(posts) == {"POST /predict 421"}, log
    # and the same page by the server's own address is answered (the check can pass)
    response = page.goto(served.url)
    assert response.status == 200
    page.close()
