"""``xpnet serve``: a local page to draw a digit on and watch the network read it.

The page (``static/``) sends the pen's strokes as they are drawn; the server prepares
them as MNIST's digits were prepared (:func:`mnist_image`: bounding box scaled to fit
20x20, centre of mass at the centre of 28x28, anti-aliased) and answers the 28x28
input with the network's probabilities. The preparation runs here, in Python, rather
than in the page: one implementation, tested with the rest of xpnet, and the same for
a client of the JSON API as for the page. From Python::

    from xpnet import TwoLayerNet
    from xpnet.serve import make_server

    server = make_server(TwoLayerNet.load("xpnet-output/model.npz"), port=8000)
    server.serve_forever()  # http://127.0.0.1:8000/

See :mod:`xpnet.serve._server` for the routes and the API.
"""

from xpnet.serve._prepare import mnist_image, render_strokes
from xpnet.serve._server import (
    DEFAULT_PEN,
    MAX_BODY_BYTES,
    MAX_POINTS,
    BadRequest,
    Predictor,
    make_server,
)

__all__ = [
    "DEFAULT_PEN",
    "MAX_BODY_BYTES",
    "MAX_POINTS",
    "BadRequest",
    "Predictor",
    "make_server",
    "mnist_image",
    "render_strokes",
]
