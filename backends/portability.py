"""Array libraries outside the backend table: what xpnet does on each, tried for real.

For every library that imports here, the toy network (4-10-3, float32) goes through
``predict``, ``loss`` with gradients, and 50 training steps, each against NumPy; a lazy
library (Dask, cubed) also predicts on its own lazy arrays. Prints a Markdown table of
what happened: ``ok``, ``refused`` (xpnet's own error, by design) or ``fails`` (the
library's error). Libraries that are not installed get a row saying so.

Usage: python backends/portability.py   (pip install ndonnx "dask[array]" marray sparse
"mlx[cpu]" cubed for every row)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import linecache
import sys
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np

from xpnet import TwoLayerNet, to_numpy

#: The libraries tried: name on PyPI, and how to get its Array API namespace.
LIBRARIES: dict[str, Callable[[], ModuleType]] = {
    "ndonnx": lambda: importlib.import_module("ndonnx"),
    "dask": lambda: importlib.import_module("array_api_compat.dask.array"),
    "marray": lambda: importlib.import_module("marray").masked_namespace(
        importlib.import_module("array_api_compat.numpy")
    ),
    "sparse": lambda: importlib.import_module("sparse"),
    "mlx": lambda: importlib.import_module("mlx.core"),
    "cubed": lambda: importlib.import_module("cubed"),
}


def toy_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return (10 * rng.standard_normal((20, 4))).astype(np.float32), np.arange(20) % 3


def outcome(check: Callable[[], bool]) -> str:
    """``ok`` if ``check()`` is True; else ``refused`` (an error xpnet raised) or ``fails``
    (one the library raised), with the error in a few words."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok" if check() else "fails: wrong values"
    except Exception as err:
        kind = "refused" if _raised_by_xpnet(err) else "fails"
        message = " ".join(str(err).split())
        return f"{kind}: {type(err).__name__}: {message[:120]}"


def _raised_by_xpnet(err: BaseException) -> bool:
    """Whether a ``raise`` statement of xpnet's raised ``err`` (its own check, by design)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or not tb.tb_frame.f_globals.get("__name__", "").startswith("xpnet"):
        return False
    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    return line.strip().startswith("raise")


def probe(xp: ModuleType) -> dict[str, str]:
    X, y = toy_data()
    reference = TwoLayerNet(4, 10, 3, std=1e-1, dtype="float32", seed=0)

    def make() -> TwoLayerNet:
        return TwoLayerNet(4, 10, 3, std=1e-1, backend=xp, dtype="float32", seed=0)

    def predict() -> bool:
        net = make()
        return bool(np.array_equal(net.predict(X), reference.predict(X)))

    def lazy_predict() -> bool:
        net = make()
        labels = net.predict(net.backend.asarray(X))
        return bool(np.array_equal(to_numpy(labels), reference.predict(X)))

    def loss() -> bool:
        value, grads = make().loss(X, y, reg=0.1)
        expected, expected_grads = reference.loss(X, y, reg=0.1)
        return abs(value - expected) < 1e-5 and all(
            np.allclose(to_numpy(grads[k]), g, atol=1e-5) for k, g in expected_grads.items()
        )

    def train() -> bool:
        settings = {"learning_rate": 0.1, "num_iters": 50, "batch_size": 10}
        got = make().train(X, y, None, None, **settings)["loss_history"][-1]
        expected = reference.train(X, y, None, None, **settings)["loss_history"][-1]
        return abs(got - expected) < 1e-4

    return {
        "predict (NumPy in)": outcome(predict),
        "predict (its arrays)": outcome(lazy_predict),
        "loss and gradients": outcome(loss),
        "train 50 steps": outcome(train),
    }


def main() -> int:
    columns = ["predict (NumPy in)", "predict (its arrays)", "loss and gradients", "train 50 steps"]
    print("| library | version | " + " | ".join(columns) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for name, namespace in LIBRARIES.items():
        try:
            version = importlib.metadata.version(name)
            xp = namespace()
        except Exception as err:  # not installed, or no build for this machine
            print(f"| {name} | - | not usable here: {type(err).__name__}: {err} |")
            continue
        row = probe(xp)
        print(f"| {name} | {version} | " + " | ".join(row[c] for c in columns) + " |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
