"""What the server computes: a network that reads 28x28 images, and the request bodies
it reads them from, checked before anything is computed.

No HTTP here: :mod:`xpnet.serve._app` reads the bodies and answers; this module says
whether a body is one the network can read (:class:`BadRequest` when not) and reads it.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from typing import TypedDict

import numpy as np

from xpnet._typing import JSON
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
#: The largest stroke coordinate or pen width, in absolute value.
_MAX_COORDINATE = 1e6


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
    name : str
        What the network is called in messages (its file).

    Raises
    ------
    ValueError
        If the network does not take 28x28 images or carries no preprocessing.
    """

    def __init__(self, net: TwoLayerNet, name: str = "the model"):
        if net.sizes[0] != SIZE * SIZE:
            raise ValueError(
                f"{name} takes {net.sizes[0]} inputs, not {SIZE}x{SIZE} images; "
                "serve a model trained on MNIST or Fashion-MNIST"
            )
        preprocessing = net.preprocessing
        if preprocessing is None:
            raise ValueError(
                f"{name} is a network saved by TwoLayerNet.save without its preprocessing "
                "(how raw pixels become its input rows), so a drawing cannot be prepared for "
                "it; serve a model written by `xpnet train` or xpnet.pipeline.save_run, or set "
                'net.preprocessing = xpnet.preprocess.fit_preprocessing("scale_and_center", '
                "X_train) (the preprocessing it was trained with) before net.save(path)"
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

    def draw(self, strokes: list[list[list[float]]], pen: float) -> tuple[Prediction, np.ndarray]:
        """The reading of a drawing, and the (28, 28) uint8 image it was prepared into.

        Raises
        ------
        BadRequest
            If the drawing leaves no ink to read (a pen too thin, strokes of no size).
        """
        try:
            image = mnist_image(render_strokes(strokes, pen))
        except ValueError as err:
            raise BadRequest(str(err)) from None
        return self(image), image


#: The types of JSON's numbers, as json.loads makes them.
_NUMBERS = frozenset({int, float})


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
    values = [v for row in rows for v in row]
    if not set(map(type, values)) <= _NUMBERS:  # JSON's numbers; not bool, a subclass of int
        raise BadRequest('"image" must hold numbers only (0..255)')
    if not 0 <= min(values) <= max(values) <= 255:  # before any float conversion
        raise BadRequest('the values of "image" must be between 0 and 255')
    return np.array(values, dtype=np.float64).reshape(SIZE, SIZE)


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
    if not all(abs(v) <= _MAX_COORDINATE for p in points for v in p):  # NaN and infinity too
        raise BadRequest(f"stroke coordinates must be finite numbers within +-{_MAX_COORDINATE:g}")
    if not points:
        raise BadRequest('"strokes" holds no point: draw something first')
    if not (_number(pen) and 0 < pen <= _MAX_COORDINATE):
        raise BadRequest('"pen" must be a positive width, in the unit of the points')
    return strokes, float(pen)
