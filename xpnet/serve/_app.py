"""The ASGI application: the drawing page, its script, and a JSON API over one network.

Routes:

- ``GET /``, ``/app.js``, ``/style.css``: the page, its script and its style, from the
  package (no CDN; it works offline).
- ``GET /model``: ``{"classes": [names], "dataset": name}``.
- ``POST /predict``: ``{"image": 28x28 numbers 0..255}``, an image already prepared as
  MNIST's are, answers ``{"label": int, "probabilities": [C floats]}``.
- ``POST /draw``: ``{"strokes": [[[x, y], ...], ...], "pen": width}`` (``pen``: the
  pen's width in the points' unit, :data:`DEFAULT_PEN` if left out), a drawing, answers
  the same plus ``"image"``, the 28x28 input it was prepared into
  (:mod:`xpnet.serve._prepare`).

Only this server's own page may use it (:mod:`xpnet.serve._guard`), and a ``POST`` must
say ``Content-Type: application/json``, which no form and no ``no-cors`` request can.
Every bad request gets a 4xx answer with ``{"error": message}``, before anything is
computed: malformed JSON, a wrong shape, values out of range or not numbers, a body over
:data:`MAX_BODY_BYTES` or slower than :data:`BODY_TIMEOUT`, an unknown path or method.
The HTTP itself (request line, headers, ``Content-Length``) is parsed by the ASGI server.
Requests are not logged here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xpnet._typing import JSON, DType
from xpnet._wording import on_command_line
from xpnet.neural_net import TwoLayerNet
from xpnet.serve._guard import Guard, allowed_names
from xpnet.serve._predictor import (
    MAX_BODY_BYTES,
    BadRequest,
    Predictor,
    parse_drawing,
    parse_image,
)

__all__ = ["BODY_TIMEOUT", "create_app"]

#: Seconds a client may take to send a request's body.
BODY_TIMEOUT = 10.0
#: Bytes of a refused body read and dropped, and for how many seconds at most, so that a
#: client still sending it reads the refusal rather than a reset connection.
_DRAIN_BYTES = 8 * MAX_BODY_BYTES
_DRAIN_SECONDS = 1.0

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def create_app(
    model: str | os.PathLike[str] | TwoLayerNet,
    *,
    allowed_hosts: Iterable[str] = (),
    backend: str = "numpy",
    device: str | None = None,
    dtype: DType | None = None,
) -> Starlette:
    """The drawing page and the JSON API for a model, as an ASGI application.

    Parameters
    ----------
    model : path or TwoLayerNet
        A model file written by ``xpnet train`` (or a network with its preprocessing).
    allowed_hosts : iterable of str
        Names or addresses clients may use to reach the server (the ``Host`` they send),
        besides the loopback ones (:data:`xpnet.serve.LOOPBACK_HOSTS`), without a port.
    backend, device, dtype
        Where and in what precision a model file's network computes, as for
        :meth:`xpnet.TwoLayerNet.load`.

    Returns
    -------
    starlette.applications.Starlette
        An ASGI application: run it with :func:`xpnet.serve.run`, or any ASGI server.

    Raises
    ------
    ValueError
        If the network cannot read 28x28 images or carries no preprocessing, or an allowed
        host is not a host name or address.
    xpnet.errors.ModelFileError
        If the file is not a valid model file.
    """
    hosts = allowed_names(allowed_hosts)  # refused before the model loads
    if isinstance(model, TwoLayerNet):
        predictor = Predictor(model)
    else:
        net = TwoLayerNet.load(model, backend=backend, device=device, dtype=dtype)
        predictor = Predictor(net, name=os.fspath(model))
    files = {
        path: (resources.files("xpnet.serve").joinpath(f"static/{name}").read_bytes(), kind)
        for path, (name, kind) in _STATIC.items()
    }

    # Every endpoint is a coroutine: Starlette would run a plain function in a worker thread.
    async def static(request: Request) -> Response:
        content, kind = files[request.url.path]
        return Response(content, media_type=kind)

    async def describe(request: Request) -> Response:
        return _json({"classes": predictor.classes, "dataset": predictor.dataset})

    async def no_icon(request: Request) -> Response:
        return Response(status_code=HTTPStatus.NO_CONTENT)

    compute = _OneAtATime()

    async def predict(request: Request) -> Response:
        body = await _json_body(request)
        answer = await compute(request, lambda: predictor(parse_image(body)), in_thread=False)
        return _json(answer)

    async def draw(request: Request) -> Response:
        body = await _json_body(request)

        def read() -> JSON:
            prediction, image = predictor.draw(*parse_drawing(body))
            return {**prediction, "image": image.tolist()}

        return _json(await compute(request, read, in_thread=True))

    routes = [Route(path, static, methods=["GET"]) for path in files]
    routes += [
        Route("/model", describe, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
        Route("/predict", predict, methods=["POST"]),
        Route("/draw", draw, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(Guard, allowed_hosts=hosts, command_line=on_command_line())],
        exception_handlers={
            BadRequest: _bad_request,
            HTTPException: _no_route,
            Exception: _failed,
        },
    )


class _OneAtATime:
    """The network's work, one request at a time, and only for clients still waiting for
    it: requests queue here, in the event loop, and a client that left costs nothing more.
    Work of a bounded, small time (a ``/predict``, about 0.2 ms) runs in the event loop;
    longer work (a drawing of up to :data:`xpnet.serve.MAX_POINTS` points) in a worker thread, while
    the event loop goes on with other clients."""

    def __init__(self) -> None:
        self._limiter: anyio.CapacityLimiter | None = None  # made in the event loop

    async def __call__(
        self, request: Request, work: Callable[[], JSON], *, in_thread: bool
    ) -> JSON:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        async with self._limiter:
            if await request.is_disconnected():
                raise BadRequest("the client closed the connection before its answer")
            return await anyio.to_thread.run_sync(work) if in_thread else work()


async def _json_body(request: Request) -> JSON:
    """The request's body, parsed as JSON; :class:`BadRequest` for anything else."""
    kind = request.headers.get("content-type", "")
    if kind.partition(";")[0].strip().lower() != "application/json":
        raise BadRequest(
            f"send the body as JSON with Content-Type: application/json, not {kind!r}",
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    declared = _declared_length(request.headers.get("content-length", "0"))
    body = bytearray()
    try:
        with anyio.fail_after(BODY_TIMEOUT):
            if declared <= MAX_BODY_BYTES:
                await _read(request, body, MAX_BODY_BYTES)
    except TimeoutError:
        late = f"the body did not arrive within {BODY_TIMEOUT:g} s"
        raise BadRequest(late, HTTPStatus.REQUEST_TIMEOUT) from None
    if max(declared, len(body)) > MAX_BODY_BYTES:
        with anyio.move_on_after(_DRAIN_SECONDS):
            await _read(request, body, _DRAIN_BYTES)
        raise BadRequest(
            f"the body is over {MAX_BODY_BYTES} bytes; at most {MAX_BODY_BYTES} are accepted",
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from None


def _declared_length(value: str) -> int:
    """The ``Content-Length``, capped at :data:`_DRAIN_BYTES` + 1 (the ASGI server has
    checked it, but another one than uvicorn may not have)."""
    if not (value.isascii() and value.isdigit()):
        raise BadRequest(f"Content-Length must be a byte count, got {value[:40]!r}")
    return min(int(value[:10]), _DRAIN_BYTES + 1) if len(value) <= 10 else _DRAIN_BYTES + 1


async def _read(request: Request, body: bytearray, limit: int) -> None:
    """Add the body's bytes to ``body`` until it ends or holds over ``limit`` bytes.

    Raises
    ------
    BadRequest
        If the client went away first (nobody reads the answer).
    """
    while len(body) <= limit:
        message = await request.receive()
        if message["type"] != "http.request":
            raise BadRequest("the client closed the connection before sending its body")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _json(value: JSON, status: int = HTTPStatus.OK) -> Response:
    content = json.dumps(value, allow_nan=False).encode()
    return Response(content, status_code=status, media_type="application/json")


async def _bad_request(request: Request, err: Exception) -> Response:
    assert isinstance(err, BadRequest)
    response = _json({"error": str(err)}, err.status)
    if err.status in (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.REQUEST_ENTITY_TOO_LARGE):
        response.headers["connection"] = "close"  # the rest of its body is not read
    return response


async def _no_route(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    path, method = request.url.path, request.method
    if err.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = sorted((err.headers or {}).get("Allow", "").split(", "))
        message = f"{path} takes {' or '.join(allowed)}, not {method}"
        return Response(
            json.dumps({"error": message}),
            status_code=err.status_code,
            headers={"Allow": ", ".join(allowed)},
            media_type="application/json",
        )
    if err.status_code == HTTPStatus.NOT_FOUND:
        return _json({"error": f"no such page: {path}"}, err.status_code)
    return _json({"error": err.detail}, err.status_code)


async def _failed(request: Request, err: Exception) -> Response:
    # A bug, not a bad request: say so, without a traceback (the server logs it).
    message = f"the server failed: {type(err).__name__}: {err}"
    return _json({"error": message}, HTTPStatus.INTERNAL_SERVER_ERROR)
