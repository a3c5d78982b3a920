"""``xpnet serve``: a real server process on 127.0.0.1, real HTTP requests, and its page
in Debian's Chromium driven by Playwright (``nox -s serve``)."""

from __future__ import annotations

import http.client
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.serve import DEFAULT_PEN, MAX_BODY_BYTES, MAX_POINTS, mnist_image, render_strokes

pytestmark = [pytest.mark.serve, pytest.mark.mnist]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def model(tmp_path_factory, mnist_dir):
    """A network trained on real MNIST by the fast recipe (about a second), saved."""
    from xpnet.pipeline import run

    result = run("fast", data_dir=mnist_dir, dtype="float32")
    assert result.val_acc > 0.97
    path = tmp_path_factory.mktemp("serve") / "model.npz"
    result.net.save(path, result.metadata())
    return path


def start(model_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``xpnet serve MODEL --port 0 ...`` as a user runs it; the URL it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "xpnet.cli", "serve", str(model_path), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"no URL printed: {line!r} {process.stderr.read()!r}")
    return process, line.split(" on ", 1)[1].split()[0]


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C, as a terminal sends it; the exit status and stderr."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


@pytest.fixture(scope="module")
def server(model):
    process, url = start(model)
    yield url
    code, err = stop(process)
    assert "Traceback" not in err, err
    assert code == 130


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


def request(url, method, path, body=None, headers=None):
    """One HTTP request; (status, headers, body bytes)."""
    connection = http.client.HTTPConnection(*address(url), timeout=20)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(url: str, data: bytes, shut: bool = False) -> tuple[int, bytes]:
    """Bytes sent as they are, for requests http.client will not make; (status, body)."""
    with socket.create_connection(address(url), timeout=20) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def post_json(url, path, value):
    status, _, body = request(
        url, "POST", path, json.dumps(value), {"Content-Type": "application/json"}
    )
    return status, json.loads(body)


def test_predict_answers_as_the_model_does_in_python(server, model, mnist_dir):
    from xpnet.data import read_data_sets

    X_test, y_test = read_data_sets(mnist_dir)[4:]
    net = TwoLayerNet.load(model)
    chosen = np.concatenate([np.nonzero(y_test == digit)[0][:2] for digit in range(10)])
    expected = net.predict_proba(net.preprocessing(X_test[chosen]))
    for i, probabilities in zip(chosen, expected, strict=True):
        image = X_test[i, :, :, 0].astype(int).tolist()
        status, answer = post_json(server, "/predict", {"image": image})
        assert status == 200
        assert answer["label"] == int(np.argmax(probabilities))
        # float32: a batch of one and a batch of twenty round differently
        np.testing.assert_allclose(answer["probabilities"], probabilities, rtol=1e-5, atol=1e-6)
    # and the model reads them: at least 18 of these 20 test digits right
    assert (np.argmax(expected, axis=1) == y_test[chosen]).sum() >= 18


def test_draw_answers_the_prepared_image_and_its_reading(server, model):
    seven = [[[80, 60], [200, 60], [120, 230]]]
    status, answer = post_json(server, "/draw", {"strokes": seven})  # the default pen
    assert status == 200
    image = mnist_image(render_strokes(seven, DEFAULT_PEN))
    assert answer["image"] == image.tolist()
    net = TwoLayerNet.load(model)
    probabilities = net.predict_proba(net.preprocessing(image.reshape(1, 28, 28, 1)))[0]
    assert answer["label"] == int(np.argmax(probabilities)) == 7
    np.testing.assert_allclose(answer["probabilities"], probabilities, rtol=1e-5, atol=1e-6)


def test_the_page_and_its_files_are_served_from_here(server):
    status, headers, page = request(server, "GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    text = page.decode()
    for needed in ('id="prediction"', "<canvas", 'id="clear"', "app.js", "style.css"):
        assert needed in text
    for name, kind in [("/app.js", "text/javascript"), ("/style.css", "text/css")]:
        status, headers, body = request(server, "GET", name)
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        text += body.decode()
    # nothing from elsewhere: no CDN, no absolute URL; the page works offline
    for elsewhere in ("http://", "https://", "//cdn"):
        assert elsewhere not in text
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = request(server, "GET", "/model")
    assert status == 200
    assert json.loads(body) == {"classes": [str(d) for d in range(10)], "dataset": "mnist"}


IMAGE = [[0] * 28 for _ in range(28)]
BAD_BODIES = {
    "not JSON": (b"image=1", 400, "not valid JSON"),
    "invalid UTF-8": (b'{"image": "\xff\xfe"}', 400, "not valid JSON"),
    "a JSON list": (b"[1, 2]", 400, "JSON object"),
    "no image": (b'{"picture": []}', 400, '"image"'),
    "27 rows": (json.dumps({"image": IMAGE[:27]}).encode(), 400, "28 rows of 28"),
    "a row of 29": (json.dumps({"image": [[0] * 29, *IMAGE[1:]]}).encode(), 400, "28 rows of 28"),
    "flat 784": (json.dumps({"image": [0] * 784}).encode(), 400, "28 rows of 28"),
    "28x28x1": (json.dumps({"image": [[[0]] * 28] * 28}).encode(), 400, "numbers only"),
    "strings": (json.dumps({"image": [["0"] * 28] * 28}).encode(), 400, "numbers only"),
    "booleans": (json.dumps({"image": [[True] * 28] * 28}).encode(), 400, "numbers only"),
    "null": (json.dumps({"image": [[None] * 28] * 28}).encode(), 400, "numbers only"),
    "256": (json.dumps({"image": [[256] * 28] * 28}).encode(), 400, "between 0 and 255"),
    "-1": (json.dumps({"image": [[-1] * 28] * 28}).encode(), 400, "between 0 and 255"),
    "1e400": (json.dumps({"image": IMAGE}).replace("0", "1e400", 1).encode(), 400, "between"),
    "10**1000": (
        json.dumps({"image": IMAGE}).replace("0", "1" + "0" * 1000, 1).encode(),
        400,
        "between",
    ),
    "10**9999": (
        json.dumps({"image": IMAGE}).replace("0", "1" + "0" * 9999, 1).encode(),
        400,
        "not valid JSON",
    ),
    "NaN": (json.dumps({"image": [[float("nan")] * 28] * 28}).encode(), 400, "NaN"),
    "Infinity": (b'{"image": Infinity}', 400, "Infinity"),
    "nested deeper than JSON can parse": (b"[" * 100_000, 400, "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_predict_bodies_get_400_with_a_message(server, case):
    body, code, message = BAD_BODIES[case]
    assert len(body) <= MAX_BODY_BYTES
    status, headers, answer = request(server, "POST", "/predict", body)
    assert status == code
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(answer)["error"]


LINE = [[[10, 10], [10, 100]]]
BAD_DRAWINGS = {
    "no strokes key": ({"lines": LINE}, '"strokes"'),
    "strokes not lists": ({"strokes": [5]}, "list of strokes"),
    "no point": ({"strokes": [[], []]}, "no point"),
    "a point of three": ({"strokes": [[[1, 2, 3]]]}, "[x, y]"),
    "a point of strings": ({"strokes": [[["1", "2"]]]}, "[x, y]"),
    "a huge coordinate": ({"strokes": [[[1e300, 2]]]}, "within"),
    "too many points": ({"strokes": [[[1, 2]] * (MAX_POINTS + 1)]}, f"at most {MAX_POINTS}"),
    "a pen of 0": ({"strokes": LINE, "pen": 0}, '"pen"'),
    "a pen of true": ({"strokes": LINE, "pen": True}, '"pen"'),
}


@pytest.mark.parametrize("case", list(BAD_DRAWINGS))
def test_bad_drawings_get_400_with_a_message(server, case):
    value, message = BAD_DRAWINGS[case]
    status, answer = post_json(server, "/draw", value)
    assert status == 400
    assert message in answer["error"]


def test_bad_requests_get_4xx_with_a_message_never_500(server):
    image = json.dumps({"image": IMAGE}).encode()
    host = f"Host: {address(server)[0]}\r\n".encode()
    cases = {
        "body over the limit": (
            lambda: request(server, "POST", "/predict", b" " * (MAX_BODY_BYTES + 1) + image)[::2],
            413, f"at most {MAX_BODY_BYTES}",
        ),
        "no Content-Length": (
            lambda: raw(server, b"POST /predict HTTP/1.1\r\n" + host + b"\r\n" + image, shut=True),
            411, "Content-Length",
        ),
        "chunked": (
            lambda: request(server, "POST", "/predict", iter([image]))[::2],
            411, "Content-Length",
        ),
        "a Content-Length that is not a number": (
            lambda: raw(server, b"POST /predict HTTP/1.1\r\n" + host
                        + b"Content-Length: ten\r\n\r\n" + image),
            400, "Content-Length",
        ),
        "a body shorter than its Content-Length": (
            lambda: raw(server, b"POST /predict HTTP/1.1\r\n" + host
                        + b"Content-Length: 9000\r\n\r\n" + image, shut=True),
            400, "ended after",
        ),
        "GET /predict": (lambda: request(server, "GET", "/predict")[::2], 405, "takes POST"),
        "PUT /predict": (lambda: request(server, "PUT", "/predict", image)[::2], 405, "POST"),
        "DELETE /": (lambda: request(server, "DELETE", "/")[::2], 405, "takes GET"),
        "an unknown method": (lambda: request(server, "BREW", "/predict")[::2], 405, "BREW"),
        "POST /": (lambda: request(server, "POST", "/", image)[::2], 405, "takes GET"),
        "an unknown path": (lambda: request(server, "GET", "/admin")[::2], 404, "/admin"),
        "a path outside the package": (
            lambda: request(server, "GET", "/../../etc/passwd")[::2], 404, "no such page",
        ),
        "a malformed request line": (lambda: raw(server, b"GARBAGE\r\n\r\n"), 400, "request"),
        "a bad HTTP version": (lambda: raw(server, b"GET / HTTP/x.y\r\n\r\n"), 400, "version"),
    }  # fmt: skip
    for case, (send, code, message) in cases.items():
        status, body = send()
        assert status == code, case
        assert message in json.loads(body)["error"], case
        assert b"Traceback" not in body
    # and it still answers
    assert post_json(server, "/predict", {"image": IMAGE})[0] == 200


def test_ctrl_c_stops_it_with_one_line_and_exit_130(model):
    process, url = start(model)
    assert address(url)[0] == "127.0.0.1"  # the default: this machine only
    assert post_json(url, "/predict", {"image": IMAGE})[0] == 200
    code, err = stop(process)
    assert code == 130
    assert err.strip().splitlines() == ["xpnet serve: stopped"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address(url), timeout=5)


def test_a_model_without_its_preprocessing_is_refused():
    from xpnet.serve import Predictor

    with pytest.raises(ValueError, match="holds no preprocessing"):
        Predictor(TwoLayerNet(784, 10, 10, seed=0))


def test_another_backend_serves_the_same_answers(model, mnist_dir):
    from xpnet.data import read_data_sets

    X_test = read_data_sets(mnist_dir)[4][:3]
    net = TwoLayerNet.load(model)
    expected = net.predict_proba(net.preprocessing(X_test))
    process, url = start(model, "--backend", "array_api_strict", "--dtype", "float64")
    try:
        for image, probabilities in zip(X_test[:, :, :, 0], expected, strict=True):
            status, answer = post_json(url, "/predict", {"image": image.astype(int).tolist()})
            assert status == 200
            np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-5)
    finally:
        assert stop(process)[0] == 130


def test_a_port_in_use_a_bad_port_and_an_unfit_model_exit_1_with_one_line(server, model, tmp_path):
    port = str(address(server)[1])
    busy = subprocess.run(
        [sys.executable, "-m", "xpnet.cli", "serve", str(model), "--port", port],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert busy.returncode == 1
    assert busy.stderr.startswith(f"xpnet: error: cannot listen on 127.0.0.1:{port}")
    assert len(busy.stderr.splitlines()) == 1
    small = tmp_path / "small.npz"
    TwoLayerNet(4, 10, 3, seed=0).save(small)
    unfit = subprocess.run(
        [sys.executable, "-m", "xpnet.cli", "serve", str(small), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unfit.returncode == 1
    assert "takes 4 inputs, not 28x28 images" in unfit.stderr
    assert len(unfit.stderr.splitlines()) == 1
    for port in ("70000", "-1"):
        bad = subprocess.run(
            [sys.executable, "-m", "xpnet.cli", "serve", str(model), "--port", port],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert bad.returncode == 1
        assert bad.stderr.strip() == (
            f"xpnet: error: port must be a number from 0 to 65535 (0: a free one), got {port}"
        )


# The page in a real browser.

#: Hand-drawn digits on the 280x280 pad: strokes of (x, y) points.
DIGITS = {
    "1": [[(145, 45), (135, 235)]],
    "0": [[(140 + 55 * np.sin(t), 140 - 85 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
    "7": [[(75, 55), (205, 55), (120, 235)]],
}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 760, "height": 520}, has_touch=True)
    page = context.new_page()
    seen, problems = [], []
    page.on("request", lambda r: seen.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server)
    page.wait_for_selector("#bars .bar >> nth=9")
    yield page
    context.close()
    assert all(url.startswith(server) for url in seen), seen  # nothing from elsewhere
    assert not problems


def draw(page, strokes, touch=False):
    """Strokes drawn on the pad with the mouse (or a finger); waits for the reading."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    if touch:
        cdp = page.context.new_cdp_session(page)
    for stroke in strokes:
        points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
        if touch:
            kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
            for kind, (x, y) in zip(kinds, points, strict=True):
                cdp.send("Input.dispatchTouchEvent",
                         {"type": kind, "touchPoints": [{"x": x, "y": y}]})  # fmt: skip
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
            continue
        page.mouse.move(*points[0])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(x, y, steps=8)
        page.mouse.up()
    page.wait_for_selector('body[data-busy="0"]', state="attached")
    return page.locator("#prediction").inner_text()


def shown_input(page) -> np.ndarray:
    """The 28x28 input the page shows, read back from its canvas."""
    data = page.evaluate(
        "Array.from(document.getElementById('input').getContext('2d')"
        ".getImageData(0, 0, 28, 28).data)"
    )
    return np.array(data, dtype=np.uint8).reshape(28, 28, 4)[:, :, 0]


@pytest.mark.parametrize("digit", list(DIGITS))
def test_digits_drawn_with_the_mouse_are_read_right(page, digit):
    reading = draw(page, DIGITS[digit])
    assert reading[0] == digit, reading
    image = shown_input(page)
    rows, cols = np.nonzero(image.any(axis=1))[0], np.nonzero(image.any(axis=0))[0]
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # scaled to fit 20x20
    ys, xs = np.mgrid[:28, :28]
    centre = (image * ys).sum() / image.sum(), (image * xs).sum() / image.sum()
    assert np.allclose(centre, 14, atol=0.6)  # centred by its centre of mass
    bars = page.locator("#bars .fill").evaluate_all("rows => rows.map(r => r.style.width)")
    widths = [float(w.rstrip("%")) for w in bars]
    assert int(np.argmax(widths)) == int(digit)
    assert sum(widths) == pytest.approx(100, abs=1)


def test_clear_empties_the_pad_and_the_reading_and_a_finger_draws_too(page):
    assert draw(page, DIGITS["7"])[0] == "7"
    page.click("#clear")
    assert page.locator("#prediction").inner_text() == "\u2013"
    assert not shown_input(page).any()
    assert draw(page, DIGITS["1"], touch=True)[0] == "1"


def screenshot(page, path: Path | None = None) -> np.ndarray:
    """What the page shows in its viewport, (H, W, 3) uint8 RGB; written to ``path`` too."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot(path=path))).convert("RGB"))


def region(shot: np.ndarray, page, selector: str, inset: int = 0) -> np.ndarray:
    """The part of a screenshot an element covers (its border box), ``inset`` pixels in."""
    box = page.locator(selector).bounding_box()
    top, left = round(box["y"]) + inset, round(box["x"]) + inset
    bottom, right = round(box["y"] + box["height"]) - inset, round(box["x"] + box["width"]) - inset
    return shot[top:bottom, left:right]


def distance_to(strokes, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each (row, col) pixel centre's distance to the nearest segment of the strokes."""
    centres = np.stack([cols + 0.5, rows + 0.5], axis=-1)
    nearest = np.full(rows.shape, np.inf)
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        for a, b in itertools.pairwise(points):
            t = np.clip(((centres - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
            gap = np.linalg.norm(centres - (a + t[..., None] * (b - a)), axis=-1)
            nearest = np.minimum(nearest, gap)
    return nearest


#: The top bar's colour (style.css's ``.bar.top .fill``).
TOP_BAR = np.array([0xD2, 0x69, 0x1E])


def test_a_screenshot_shows_the_drawing_its_input_and_its_reading(page, tmp_path):
    """The page's picture before a digit is drawn, after, and after Clear: the ink where the
    pen went, the network's input as the server prepared it, the reading's bar as wide as
    its probability. Writes the drawn picture; ``XPNET_SERVE_SCREENSHOT=docs/serve.png``
    keeps it."""
    viewport = page.viewport_size
    for selector in ("h1", "#pad", "#clear", "#prediction", "#input", "#bars"):
        element = page.locator(selector)
        assert element.is_visible(), selector
        box = element.bounding_box()
        assert 0 <= box["x"] <= viewport["width"] - box["width"], selector
        assert 0 <= box["y"] <= viewport["height"] - box["height"], selector
    pen = page.evaluate("document.getElementById('pad').getContext('2d').lineWidth")
    inset = 4  # past the pad's 1-pixel border and its rounded corners

    blank = screenshot(page)
    assert blank.shape == (viewport["height"], viewport["width"], 3)
    assert (region(blank, page, "#pad", inset) == 255).all()  # a white pad
    assert (region(blank, page, "#input") == 0).all()  # an empty (black) input
    assert not (np.abs(region(blank, page, "#bars") - TOP_BAR).max(axis=-1) <= 3).any()

    strokes = DIGITS["7"]
    assert draw(page, strokes)[0] == "7"
    path = tmp_path / "serve.png"
    drawn = screenshot(page, path)
    # Ink where the pen went, and nowhere else.
    pad = region(drawn, page, "#pad", inset).max(axis=-1)
    rows, cols = np.mgrid[: pad.shape[0], : pad.shape[1]]
    distance = distance_to(strokes, rows + inset - 1, cols + inset - 1)  # canvas pixels
    assert (pad[distance < pen / 2 - 1.5] < 64).all()
    assert (pad[distance > pen / 2 + 1.5] == 255).all()
    # The input canvas shows the server's 28x28 input, four screen pixels a pixel.
    shown = region(drawn, page, "#input")[2::4, 2::4]
    expected = shown_input(page)
    assert expected.max() == 255
    np.testing.assert_allclose(shown, np.repeat(expected[..., None], 3, axis=-1), atol=1)
    # The reading's bar (7) is the only top one, its fill as wide as its probability.
    assert page.locator("#bars .bar.top").count() == 1
    top = np.abs(region(drawn, page, "#bars") - TOP_BAR).max(axis=-1) <= 3
    track = region(drawn, page, "#bars .bar.top .track")
    filled = np.abs(track - TOP_BAR).max(axis=-1) <= 3
    assert top.sum() == filled.sum() > 0
    assert page.locator("#bars .bar").nth(7).get_attribute("class") == "bar top"
    probability = float(page.locator("#bars .bar.top .value").inner_text().rstrip("%")) / 100
    assert filled[filled.shape[0] // 2].sum() == pytest.approx(probability * track.shape[1], abs=2)

    page.click("#clear")
    cleared = screenshot(page)
    for selector, inset_by in (("#pad", inset), ("#input", 0), ("#bars", 0)):
        np.testing.assert_array_equal(
            region(cleared, page, selector, inset_by), region(blank, page, selector, inset_by)
        )
    if os.environ.get("XPNET_SERVE_SCREENSHOT"):
        shutil.copy(path, os.environ["XPNET_SERVE_SCREENSHOT"])
