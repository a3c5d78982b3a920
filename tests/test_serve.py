"""``xpnet serve``: a real server process on 127.0.0.1 and real HTTP requests; its answers
against the model's in Python, its refusals of bad bodies, and the command line
(``nox -s serve``). The HTTP layer is tested in test_serve_http.py, who may use the server
in test_serve_guard.py, the page in Chromium in test_serve_page.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from serving import IMAGE, JSON_HEADERS, address, post_json, request, start, stop, train_model

from xpnet import TwoLayerNet
from xpnet.serve import DEFAULT_PEN, MAX_BODY_BYTES, MAX_POINTS, mnist_image, render_strokes

pytestmark = [pytest.mark.serve, pytest.mark.mnist]


@pytest.fixture(scope="module")
def model(tmp_path_factory, mnist_dir):
    return train_model(tmp_path_factory.mktemp("serve"), mnist_dir)


@pytest.fixture(scope="module")
def server(model):
    running = start(model)
    yield running.url
    code, err = stop(running)
    assert "Traceback" not in err, err
    assert code == 130


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
    assert headers["content-type"].startswith("text/html")
    text = page.decode()
    for needed in ('id="prediction"', "<canvas", 'id="clear"', "app.js", "style.css"):
        assert needed in text
    for name, kind in [("/app.js", "text/javascript"), ("/style.css", "text/css")]:
        status, headers, body = request(server, "GET", name)
        assert status == 200
        assert headers["content-type"].startswith(kind)
        text += body.decode()
    # nothing from elsewhere: no CDN, no absolute URL; the page works offline
    for elsewhere in ("http://", "https://", "//cdn"):
        assert elsewhere not in text
    assert "default-src 'self'" in headers["content-security-policy"]
    status, _, body = request(server, "GET", "/model")
    assert status == 200
    assert json.loads(body) == {"classes": [str(d) for d in range(10)], "dataset": "mnist"}


BAD_BODIES = {
    "not JSON": (b"image=1", "not valid JSON"),
    "empty": (b"", "not valid JSON"),
    "invalid UTF-8": (b'{"image": "\xff\xfe"}', "not valid JSON"),
    "a JSON list": (b"[1, 2]", "JSON object"),
    "no image": (b'{"picture": []}', '"image"'),
    "27 rows": (json.dumps({"image": IMAGE[:27]}).encode(), "28 rows of 28"),
    "a row of 29": (json.dumps({"image": [[0] * 29, *IMAGE[1:]]}).encode(), "28 rows of 28"),
    "flat 784": (json.dumps({"image": [0] * 784}).encode(), "28 rows of 28"),
    "28x28x1": (json.dumps({"image": [[[0]] * 28] * 28}).encode(), "numbers only"),
    "strings": (json.dumps({"image": [["0"] * 28] * 28}).encode(), "numbers only"),
    "booleans": (json.dumps({"image": [[True] * 28] * 28}).encode(), "numbers only"),
    "null": (json.dumps({"image": [[None] * 28] * 28}).encode(), "numbers only"),
    "256": (json.dumps({"image": [[256] * 28] * 28}).encode(), "between 0 and 255"),
    "-1": (json.dumps({"image": [[-1] * 28] * 28}).encode(), "between 0 and 255"),
    "1e400": (json.dumps({"image": IMAGE}).replace("0", "1e400", 1).encode(), "between"),
    "10**1000": (
        json.dumps({"image": IMAGE}).replace("0", "1" + "0" * 1000, 1).encode(),
        "between",
    ),
    "10**9999": (
        json.dumps({"image": IMAGE}).replace("0", "1" + "0" * 9999, 1).encode(),
        "not valid JSON",
    ),
    "NaN": (json.dumps({"image": [[float("nan")] * 28] * 28}).encode(), "NaN"),
    "Infinity": (b'{"image": Infinity}', "Infinity"),
    "nested deeper than JSON can parse": (b"[" * 100_000, "not valid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_predict_bodies_get_400_with_a_message(server, case):
    body, message = BAD_BODIES[case]
    assert len(body) <= MAX_BODY_BYTES
    status, headers, answer = request(server, "POST", "/predict", body, JSON_HEADERS)
    assert status == 400
    assert headers["content-type"] == "application/json"
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
    "a dot with a pen of 1e-20": ({"strokes": [[[10, 10]]], "pen": 1e-20}, "too small"),
    "a dot with a pen of 5e-324": ({"strokes": [[[10, 10]]], "pen": 5e-324}, "too small"),
    "a line with a pen of 1e-20": ({"strokes": LINE, "pen": 1e-20}, "too thin"),
    "a line with a pen of 5e-324": ({"strokes": LINE, "pen": 5e-324}, "too thin"),
    "a line 1e-300 long, a pen of 5e-324": (
        {"strokes": [[[0, 0], [1e-300, 0]]], "pen": 5e-324},
        "too thin",
    ),
    "one point twice at 1e6, a pen of 1e-300": (
        {"strokes": [[[1e6, -1e6], [1e6, -1e6]]], "pen": 1e-300},
        "too small",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DRAWINGS))
def test_bad_drawings_get_400_with_a_message(server, case):
    value, message = BAD_DRAWINGS[case]
    status, answer = post_json(server, "/draw", value)
    assert status == 400
    assert message in answer["error"]


def test_ctrl_c_stops_it_with_one_line_and_exit_130(model):
    running = start(model)
    url = running.url
    assert address(url)[0] == "127.0.0.1"  # the default: this machine only
    assert post_json(url, "/predict", {"image": IMAGE})[0] == 200
    code, err = stop(running)
    assert code == 130
    assert err.strip().splitlines() == ["xpnet serve: stopped"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address(url), timeout=5)


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpnet.cli", "serve", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_model_saved_without_its_preprocessing_is_refused_saying_what_it_is(tmp_path):
    bare = tmp_path / "bare.npz"
    TwoLayerNet(784, 10, 10, seed=0).save(bare)
    refused = serve_command(str(bare), "--port", "0")
    assert refused.returncode == 1
    assert len(refused.stderr.splitlines()) == 1
    message = refused.stderr
    assert f"{bare} is a network saved by TwoLayerNet.save without its preprocessing" in message
    assert "`xpnet train`" in message
    assert "fit_preprocessing" in message
    assert "older" not in message


def test_another_backend_serves_the_same_answers(model, mnist_dir):
    from xpnet.data import read_data_sets

    X_test = read_data_sets(mnist_dir)[4][:3]
    net = TwoLayerNet.load(model)
    expected = net.predict_proba(net.preprocessing(X_test))
    running = start(model, "--backend", "array_api_strict", "--dtype", "float64")
    try:
        for image, probabilities in zip(X_test[:, :, :, 0], expected, strict=True):
            status, answer = post_json(
                running.url, "/predict", {"image": image.astype(int).tolist()}
            )
            assert status == 200
            np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-5)
    finally:
        assert stop(running)[0] == 130


def test_a_port_in_use_a_bad_port_a_bad_host_and_an_unfit_model_exit_1_with_one_line(
    server, model, tmp_path
):
    port = str(address(server)[1])
    busy = serve_command(str(model), "--port", port)
    assert busy.returncode == 1
    assert busy.stderr.startswith(f"xpnet: error: cannot listen on 127.0.0.1:{port}")
    assert len(busy.stderr.splitlines()) == 1
    small = tmp_path / "small.npz"
    TwoLayerNet(4, 10, 3, seed=0).save(small)
    unfit = serve_command(str(small), "--port", "0")
    assert unfit.returncode == 1
    assert "takes 4 inputs, not 28x28 images" in unfit.stderr
    assert len(unfit.stderr.splitlines()) == 1
    for port in ("70000", "-1"):
        bad = serve_command(str(model), "--port", port)
        assert bad.returncode == 1
        assert bad.stderr.strip() == (
            f"xpnet: error: port must be a number from 0 to 65535 (0: a free one), got {port}"
        )
    every = serve_command(str(model), "--port", "0", "--host", "")
    assert every.returncode == 1
    assert every.stderr.startswith("xpnet: error: --host '' would listen on every interface")
    for allowed in ("example.org:8000", "*.example.org", "http://example.org"):
        odd = serve_command(str(model), "--port", "0", "--allowed-host", allowed)
        assert odd.returncode == 1
        assert f"allowed host {allowed!r} is not a host name or address" in odd.stderr


def test_listening_beyond_this_machine_warns_that_the_api_has_no_authentication(model):
    running = start(model, "--host", "0.0.0.0")
    try:
        assert running.url.startswith("http://0.0.0.0:")
        port = address(running.url)[1]
        assert post_json(f"http://127.0.0.1:{port}", "/predict", {"image": IMAGE})[0] == 200
    finally:
        code, err = stop(running)
    assert code == 130
    warning, stopped = err.splitlines()
    assert warning.startswith("xpnet serve: warning: listening on 0.0.0.0, which other machines")
    assert "no authentication" in warning
    assert stopped == "xpnet serve: stopped"


def test_the_app_runs_under_uvicorn_with_several_workers_as_the_readme_says(model, tmp_path):
    """``create_app`` under another ASGI server's command line, two worker processes."""
    (tmp_path / "digits.py").write_text(
        textwrap.dedent(f"""
            from xpnet.serve import create_app

            app = create_app({str(model)!r})
        """)
    )
    with socket.socket() as probe:  # a free port, for a command that cannot take port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "digits:app", "--workers", "2", "--port", str(port),
         "--no-server-header", "--log-level", "warning"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                status, answer = post_json(url, "/predict", {"image": IMAGE})
                break
            except ConnectionError:
                assert process.poll() is None, process.communicate()
                time.sleep(0.1)
        assert status == 200
        assert len(answer["probabilities"]) == 10
        # the guard comes with the app: another Host is refused
        status, _, body = request(url, "GET", "/model", headers={"Host": "evil.example"})
        assert status == 421
        assert "evil.example" in json.loads(body)["error"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err
