"""Shared fixtures: one backend fixture runs every test on every array library.

``XPNET_BACKENDS`` (comma-separated) names the backends to test; each named one
must be usable, or its tests fail. Unset, every installed backend runs and the
others are skipped with the reason.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from xpnet import SUPPORTED_BACKENDS, TwoLayerNet, resolve_backend

try:  # array-api-strict at its strictest: newest standard, optional features off
    import array_api_strict

    array_api_strict.reset_array_api_strict_flags()
    array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)
except ImportError:
    pass

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
