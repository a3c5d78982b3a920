"""The HTTP server: the drawing page, its script, and a JSON API over one network.

It is the standard library's :class:`http.server.ThreadingHTTPServer`: the server
answers one user on one machine, a few requests a second, so a framework would add a
dependency and nothing this needs. Routes:

- ``GET /``, ``/app.js``, ``/style.css``: the page, its script and its style, from the
  package (no CDN; it works offline).
- ``GET /model``: ``{"classes": [names], "dataset": name}``.
- ``POST /predict``: ``{"image": 28x28 numbers 0..255}``, an image already prepared as
  MNIST's are, answers ``{"label": int, "probabilities": [C floats]}``.
- ``POST /draw``: ``{"strokes": [[[x, y], ...], ...], "pen": width}`` (``pen``: the
  pen's width in the points' unit, :data:`DEFAULT_PEN` if left out), a drawing, answers
  the same plus ``"image"``, the 28x28 input it was prepared into
  (:mod:`xpnet.serve._prepare`).

Every bad request gets a 4xx answer with ``{"error": message}``, never a traceback:
malformed JSON, a wrong shape, values out of range or not numbers, a body over
:data:`MAX_BODY_BYTES` or without a ``Content-Length``, an unknown path or method.
Requests are not logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, TypedDict

import numpy as np

from xpnet._typing import JSON, JSONObject
from xpnet.data import DATASETS
from xpnet.neural_net import TwoLayerNet
from xpnet.serve._prepare import SIZE, mnist_image, render_strokes

__all__ = [
    "DEFAULT_PEN",
    "MAX_BODY_BYTES",
    "MAX_POINTS",
    "BadRequest",
    "Prediction",
    "Predictor",
    "make_server",
    "parse_drawing",
    "parse_image",
]

#: The largest request body accepted, in bytes (a 28x28 image is about 4 KB).
MAX_BODY_BYTES = 128 * 1024
#: The most stroke points a drawing may have.
MAX_POINTS = 4000
#: The pen's width when a drawing does not say: a tenth of the page's 280-pixel pad, which
#: draws strokes about as thick, relative to the digit, as MNIST's.
DEFAULT_PEN = 28
#: Seconds a client may take to send its request.
_TIMEOUT = 10

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_POSTS = ("/predict", "/draw")


class BadRequest(ValueError):
    """A request the server refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class Prediction(TypedDict):
    """What :class:`Predictor` answers: the most likely class, and every class's probability."""

    label: int
    probabilities: list[float]


class Predictor:
    """A network that reads 28x28 images, one request at a time.

    Parameters
    ----------
    net : TwoLayerNet
        A network of 784 inputs with the preprocessing it was trained with.

    Raises
    ------
    ValueError
        If the network does not take 28x28 images or carries no preprocessing.
    """

    def __init__(self, net: TwoLayerNet):
        if net.sizes[0] != SIZE * SIZE:
            raise ValueError(
                f"the model takes {net.sizes[0]} inputs, not {SIZE}x{SIZE} images; "
                "serve a model trained on MNIST or Fashion-MNIST"
            )
        preprocessing = net.preprocessing
        if preprocessing is None:
            raise ValueError(
                "the model file holds no preprocessing (its network was saved without "
                "one); train it with `xpnet train`, or set net.preprocessing before saving"
            )
        self.net = net
        self.preprocessing = preprocessing
        dataset = str(net.metadata.get("dataset", "mnist"))
        names = DATASETS[dataset].class_names if dataset in DATASETS else None
        self.classes = list(names or map(str, range(net.sizes[2])))
        self.dataset = dataset
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Prediction:
        """``{"label", "probabilities"}`` for an image (28, 28) of values 0..255."""
        images = np.asarray(image, dtype=np.float32).reshape(1, SIZE, SIZE, 1)
        with self._lock:
            probabilities = np.asarray(self.net.predict_proba(self.preprocessing(images)))
        row = [float(p) for p in probabilities[0]]
        return {"label": int(np.argmax(probabilities[0])), "probabilities": row}


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_image(body: JSON) -> np.ndarray:
    """The image of a ``/predict`` request: 28 rows of 28 numbers from 0 to 255."""
    if not isinstance(body, dict) or "image" not in body:
        raise BadRequest('the body must be a JSON object with an "image": 28 rows of 28 numbers')
    rows = body["image"]
    shape_ok = isinstance(rows, list) and len(rows) == SIZE
    if not (shape_ok and all(isinstance(row, list) and len(row) == SIZE for row in rows)):
        raise BadRequest(f'"image" must be {SIZE} rows of {SIZE} numbers (0..255)')
    if not all(_number(v) for row in rows for v in row):
        raise BadRequest('"image" must hold numbers only (0..255)')
    if not all(0 <= v <= 255 for row in rows for v in row):  # before any float conversion
        raise BadRequest('the values of "image" must be between 0 and 255')
    return np.array(rows, dtype=np.float64)


def parse_drawing(body: JSON) -> tuple[list[list[list[float]]], float]:
    """The strokes and pen width of a ``/draw`` request."""
    usage = '{"strokes": [[[x, y], ...], ...], "pen": width}'
    if not isinstance(body, dict) or "strokes" not in body:
        raise BadRequest(f"the body must be a JSON object {usage}")
    strokes, pen = body["strokes"], body.get("pen", DEFAULT_PEN)
    if not (isinstance(strokes, list) and all(isinstance(s, list) for s in strokes)):
        raise BadRequest(f'"strokes" must be a list of strokes, each a list of [x, y]: {usage}')
    points = [point for stroke in strokes for point in stroke]
    if len(points) > MAX_POINTS:
        raise BadRequest(f"a drawing may have at most {MAX_POINTS} points, got {len(points)}")
    if not all(isinstance(p, list) and len(p) == 2 and all(map(_number, p)) for p in points):
        raise BadRequest('each point of "strokes" must be [x, y], two numbers')
    if not all(abs(v) <= 1e6 for p in points for v in p):  # NaN and infinity fail too
        raise BadRequest("stroke coordinates must be finite numbers within +-1e6")
    if not points:
        raise BadRequest('"strokes" holds no point: draw something first')
    if not (_number(pen) and 0 < pen <= 1e6):
        raise BadRequest('"pen" must be a positive width, in the unit of the points')
    return strokes, float(pen)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _TIMEOUT
    error_content_type = "application/json"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_POST(self) -> None:
        self._answer(head=False)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Any other method (PUT, DELETE, BREW, ...) is refused as 405, not 501.
        if name.startswith("do_"):
            return self.do_POST
        raise AttributeError(name)

    def _answer(self, head: bool) -> None:
        try:
            status, body, content_type = self._route()
        except BadRequest as err:
            status, body = err.status, _json({"error": str(err)})
            content_type = "application/json"
            self.close_connection = True
        except Exception as err:  # a bug, not a bad request: say so, without a traceback
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body = _json({"error": f"the server failed: {type(err).__name__}: {err}"})
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'")
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            path = self.path.split("?", 1)[0]
            self.send_header("Allow", "POST" if path in _POSTS else "GET, HEAD")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self) -> tuple[HTTPStatus, bytes, str]:
        path = self.path.split("?", 1)[0]
        if path == "/favicon.ico":
            return HTTPStatus.NO_CONTENT, b"", "image/x-icon"
        if path not in _STATIC and path not in _POSTS and path != "/model":
            raise BadRequest(f"no such page: {path}", HTTPStatus.NOT_FOUND)
        method = self.command
        if path in _POSTS and method != "POST":
            raise BadRequest(f"{path} takes POST, not {method}", HTTPStatus.METHOD_NOT_ALLOWED)
        if path not in _POSTS and method not in ("GET", "HEAD"):
            raise BadRequest(f"{path} takes GET, not {method}", HTTPStatus.METHOD_NOT_ALLOWED)
        predictor = self.server.predictor
        if path == "/model":
            answer: JSONObject = {"classes": predictor.classes, "dataset": predictor.dataset}
            return HTTPStatus.OK, _json(answer), "application/json"
        if path in _STATIC:
            name, content_type = _STATIC[path]
            return HTTPStatus.OK, _static(name), content_type
        body = self._json_body()
        if path == "/predict":
            return HTTPStatus.OK, _json(predictor(parse_image(body))), "application/json"
        strokes, pen = parse_drawing(body)
        try:
            image = mnist_image(render_strokes(strokes, pen))
        except ValueError as err:
            raise BadRequest(str(err)) from None
        answer = {**predictor(image), "image": image.tolist()}
        return HTTPStatus.OK, _json(answer), "application/json"

    def _json_body(self) -> JSON:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise BadRequest("send the body with a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        length = self.headers.get("Content-Length")
        if length is None:
            raise BadRequest("the request needs a Content-Length", HTTPStatus.LENGTH_REQUIRED)
        if not length.strip().isdigit():
            raise BadRequest(f"Content-Length must be a byte count, got {length!r}")
        if int(length) > MAX_BODY_BYTES:
            self._discard(int(length))
            raise BadRequest(
                f"the body is {int(length)} bytes; at most {MAX_BODY_BYTES} are accepted",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            data = self.rfile.read(int(length))
        except TimeoutError:
            late = "the body did not arrive in time"
            raise BadRequest(late, HTTPStatus.REQUEST_TIMEOUT) from None
        if len(data) < int(length):
            raise BadRequest(f"the body ended after {len(data)} of {length} bytes")
        try:
            return json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as err:
            raise BadRequest(f"the body is not valid JSON: {err}") from None

    def _discard(self, length: int) -> None:
        """Read and drop a refused body (up to a bound), so that the client, still
        sending, reads the answer rather than a reset connection."""
        left = min(length, 8 * MAX_BODY_BYTES)
        try:
            while left > 0 and (chunk := self.rfile.read(min(left, 65536))):
                left -= len(chunk)
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The base class's own refusals (a malformed request line, headers too long),
        # answered in JSON like the rest.
        body = _json({"error": message or HTTPStatus(code).phrase})
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # a line too malformed to have a version
            self.request_version = "HTTP/1.0"  # still answer with a status line
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # Any: the base class's
        pass


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _json(value: JSON) -> bytes:
    return json.dumps(value, allow_nan=False).encode()


def _static(name: str) -> bytes:
    return resources.files("xpnet.serve").joinpath("static").joinpath(name).read_bytes()


class _Server(ThreadingHTTPServer):
    predictor: Predictor


def make_server(net: TwoLayerNet, host: str = "127.0.0.1", port: int = 8000) -> _Server:
    """A server of the drawing page and the JSON API for ``net``, listening, not yet serving.

    Call ``serve_forever()`` on it, and ``server_close()`` after; ``port=0`` takes a free
    port, which ``server.server_address[1]`` tells.

    Raises
    ------
    ValueError
        If ``net`` cannot read 28x28 images (see :class:`Predictor`), or ``port`` is not
        a port number (0 to 65535).
    OSError
        If the address cannot be listened on (a port in use), with the address in the message.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535 (0: a free one), got {port!r}")
    predictor = Predictor(net)
    try:
        server = _Server((host, port), _Handler)
    except OSError as err:
        raise OSError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port "
            "(0 takes a free one) or --host"
        ) from None
    server.predictor = predictor
    return server
