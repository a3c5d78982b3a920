"""Shared fixtures: one backend fixture runs every test on every array library.

``XPNET_BACKENDS`` (comma-separated) names the backends to test; each named one
must be usable, or its tests fail. Unset, every installed backend runs and the
others are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from xpnet import SUPPORTED_BACKENDS, TwoLayerNet, resolve_backend
from xpnet.backend import enable_jax_float64, use_strictest_array_api_strict

# array-api-strict at its strictest, so any non-standard call fails; JAX in float64.
use_strictest_array_api_strict()
enable_jax_float64()

_REQUESTED = [name for name in os.environ.get("XPNET_BACKENDS", "").split(",") if name]
for _name in _REQUESTED:
    if _name not in SUPPORTED_BACKENDS:
        raise pytest.UsageError(f"XPNET_BACKENDS names unknown backend {_name!r}")


@pytest.fixture(params=_REQUESTED or list(SUPPORTED_BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of a usable backend; the same test runs once per backend."""
    name = request.param
    try:
        resolve_backend(name)
    except (ImportError, RuntimeError) as err:
        if _REQUESTED:
            pytest.fail(f"backend {name!r} was requested by XPNET_BACKENDS but is unusable: {err}")
        pytest.skip(f"backend {name!r} unavailable: {err}")
    return name


def _runs_with(item: pytest.Item, requested: list[str]) -> bool:
    """Whether a test belongs to a run of the ``requested`` backends.

    Tests on the ``backend`` fixture run with every backend; a test marked
    ``@pytest.mark.backend("torch")`` runs with torch's; the rest run with numpy's.
    """
    if "backend" in getattr(item, "fixturenames", ()):
        return True
    marker = item.get_closest_marker("backend")
    return bool(set(marker.args if marker else ["numpy"]) & set(requested))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """When backends are chosen, run each backend-independent test in one session only."""
    if _REQUESTED:
        keep = [item for item in items if _runs_with(item, _REQUESTED)]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory of the real MNIST files: ``XPNET_DATA``, else xpnet's cache.

    In CI (``CI`` set) missing data is a failure; elsewhere the test is skipped
    with a note on how to get the data.
    """
    from xpnet.data import DATASETS, data_dir

    directory = data_dir("mnist")
    if all((directory / name).is_file() for name in DATASETS["mnist"].sha256):
        return directory
    problem = f"the MNIST files are not in {directory}"
    if os.environ.get("CI"):
        pytest.fail(f"{problem}: CI must provide them (XPNET_DATA)")
    pytest.skip(f"{problem}: run `xpnet data` to download them, or set XPNET_DATA")


@pytest.fixture(scope="session")
def mnist_rows(mnist_dir: Path) -> list:
    """The lab's ``get_mnist_data()``: mean image subtracted, images as rows."""
    from xpnet.data import read_data_sets
    from xpnet.preprocess import subtract_mean_image

    X_train, y_train, X_val, y_val, X_test, y_test = read_data_sets(mnist_dir)
    X_train, X_val, X_test = subtract_mean_image(X_train, X_val, X_test)
    return [X_train, y_train, X_val, y_val, X_test, y_test]


@pytest.fixture
def xp(backend: str):
    """The Array API namespace of ``backend``."""
    return resolve_backend(backend).xp


# The lab's toy problem (sections 1-5 of the handout).
TOY_INPUT_SIZE, TOY_HIDDEN_SIZE, TOY_NUM_CLASSES, TOY_NUM_INPUTS = 4, 10, 3, 5


@pytest.fixture
def toy_net(backend: str) -> TwoLayerNet:
    """The handout's ``init_toy_model()`` on ``backend``."""
    np.random.seed(0)
    return TwoLayerNet(TOY_INPUT_SIZE, TOY_HIDDEN_SIZE, TOY_NUM_CLASSES, std=1e-1, backend=backend)


@pytest.fixture
def toy_data() -> tuple[np.ndarray, np.ndarray]:
    """The handout's ``init_toy_data()``."""
    np.random.seed(1)
    X = 10 * np.random.randn(TOY_NUM_INPUTS, TOY_INPUT_SIZE)
    y = np.array([0, 1, 2, 2, 1])
    return X, y
