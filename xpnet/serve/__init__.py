"""``xpnet serve``: a local page to draw a digit on and watch the network read it.

The page (``static/``) sends the pen's strokes as they are drawn; the server prepares
them as MNIST's digits were prepared (:func:`mnist_image`: bounding box scaled to fit
20x20, centre of mass at the centre of 28x28, anti-aliased) and answers the 28x28
input with the network's probabilities. The preparation runs here, in Python, rather
than in the page: one implementation, tested with the rest of xpnet, and the same for
a client of the JSON API as for the page.

The server is an ASGI application (Starlette) run by uvicorn (``pip install starlette
uvicorn``; from a checkout, ``pip install ".[serve]"``); both are imported only by
:func:`create_app`, :func:`listen` and :func:`run`, so the preparation needs neither. From Python::

    from xpnet.serve import create_app, listen, run

    app = create_app("xpnet-output/model.npz")
    run(app, listen("127.0.0.1", 8000))  # http://127.0.0.1:8000/, until Ctrl-C

or ``app`` under any ASGI server (``uvicorn module:app --workers 4``), with as many worker
processes as it runs: each calls :func:`create_app` once. See :mod:`xpnet.serve._app` for
the routes and the API, :mod:`xpnet.serve._guard` for who may use it, and
:mod:`xpnet.serve._protocol` and :mod:`xpnet.serve._run` for what uvicorn does here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xpnet.serve._predictor import (
    DEFAULT_PEN,
    MAX_BODY_BYTES,
    MAX_POINTS,
    BadRequest,
    Prediction,
    Predictor,
    parse_drawing,
    parse_image,
)
from xpnet.serve._prepare import mnist_image, render_strokes

if TYPE_CHECKING:
    from xpnet.serve._app import create_app
    from xpnet.serve._guard import LOOPBACK_HOSTS
    from xpnet.serve._run import listen, run

__all__ = [
    "DEFAULT_PEN",
    "LOOPBACK_HOSTS",
    "MAX_BODY_BYTES",
    "MAX_POINTS",
    "BadRequest",
    "Prediction",
    "Predictor",
    "create_app",
    "listen",
    "mnist_image",
    "parse_drawing",
    "parse_image",
    "render_strokes",
    "run",
]

#: The names that need Starlette and uvicorn, and the module of each.
_SERVER_NAMES = {
    "create_app": "_app",
    "LOOPBACK_HOSTS": "_guard",
    "listen": "_run",
    "run": "_run",
}


def __getattr__(name: str) -> Any:  # Any: the attribute asked for
    if name not in _SERVER_NAMES:
        raise AttributeError(f"module 'xpnet.serve' has no attribute {name!r}")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"xpnet serve needs Starlette and uvicorn ({err}); install them with: "
            "pip install starlette uvicorn"
        ) from None
    from importlib import import_module

    return getattr(import_module(f"xpnet.serve.{_SERVER_NAMES[name]}"), name)
