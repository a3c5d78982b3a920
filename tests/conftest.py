"""Shared fixtures: one backend fixture runs every test on every array library and device.

``XPNET_BACKENDS`` (comma-separated) names the backends to test, each as ``name``
(every device of it this machine has: torch and JAX add their GPU where there is
one) or ``name@device`` (``torch@cuda:0``, ``jax@gpu:0``); each named one must be
usable, or its tests fail. Unset, every installed backend runs and the others are
skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend
from xpnet.backend import BACKENDS, Backend


def use_strictest_array_api_strict() -> None:
    """Set array-api-strict to its newest standard with boolean indexing and
    data-dependent shapes off, so that any call beyond what xpnet may rely on fails.
    Its extensions (``linalg``, ``fft``) stay on; xpnet uses neither.
    """
    if importlib.util.find_spec("array_api_strict") is None:
        return
    import array_api_strict

    array_api_strict.reset_array_api_strict_flags()  # the default version is the newest
    array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)


def configure_jax() -> None:
    """JAX in float64 (its 64-bit mode), and float32 matrix products at full precision
    (not TF32, JAX's default on NVIDIA GPUs), so it is compared like with like."""
    if importlib.util.find_spec("jax") is None:
        return
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")


use_strictest_array_api_strict()
configure_jax()


def _requested() -> list[tuple[str, Any]]:
    """``XPNET_BACKENDS`` as (name, device) pairs; a device of None means all of them."""
    pairs = []
    for entry in filter(None, os.environ.get("XPNET_BACKENDS", "").split(",")):
        name, _, device = entry.partition("@")
        if name not in BACKENDS:
            raise pytest.UsageError(f"XPNET_BACKENDS names unknown backend {name!r}")
        pairs.append((name, _device(device) if device else None))
    return pairs


def _device(text: str) -> Any:
    return int(text) if text.isdigit() else text


def _test_devices(name: str) -> list[Any]:
    try:
        return BACKENDS[name].test_devices()
    except Exception:  # the library is missing or broken: the fixture says why
        return [None]


_REQUESTED = _requested()
_COMBINATIONS = [
    (name, device)
    for name, wanted in (_REQUESTED or [(name, None) for name in BACKENDS])
    for device in ([wanted] if wanted is not None else _test_devices(name))
]


def _id(combination: tuple[str, Any]) -> str:
    name, device = combination
    return name if device in (None, "cpu", 0) else f"{name}@{device}"


@pytest.fixture(params=_COMBINATIONS, ids=[_id(c) for c in _COMBINATIONS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """A usable backend on one of its devices; the same test runs once per combination."""
    name, device = request.param
    try:
        return resolve_backend(name, device)
    except (ImportError, RuntimeError, ValueError) as err:
        if _REQUESTED:
            pytest.fail(
                f"{_id(request.param)!r} was requested by XPNET_BACKENDS but is unusable: {err}"
            )
        pytest.skip(f"backend {_id(request.param)!r} unavailable: {err}")


def _runs_with(item: pytest.Item, requested: list[str]) -> bool:
    """Whether a test belongs to a run of the ``requested`` backends.

    Tests on the ``backend`` fixture run with every backend; a test marked
    ``@pytest.mark.backend("torch")`` runs with torch's; the rest run with numpy's.
    """
    if "backend" in getattr(item, "fixturenames", ()):
        return True
    marker = item.get_closest_marker("backend")
    return bool(set(marker.args if marker else ["numpy"]) & set(requested))


#: The fixtures of the real data files: a test that uses one must be marked ``mnist``.
DATA_FIXTURES = frozenset({"mnist_dir", "mnist_rows", "fashion_mnist_dir"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check that tests of the real data are marked ``mnist``; when backends are chosen,
    run each backend-independent test in one session only."""
    unmarked = [
        item.nodeid
        for item in items
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("mnist") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests read the real data files but are not marked "
            "@pytest.mark.mnist: " + ", ".join(unmarked)
        )
    if _REQUESTED:
        names = [name for name, _ in _REQUESTED]
        keep = [item for item in items if _runs_with(item, names)]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def _data_files(dataset: str, how_to_get: str, in_ci: str) -> Path:
    """The directory of a dataset's real files (see :func:`xpnet.data.data_dir`).

    In CI (``CI`` set) missing files are a failure, with ``in_ci`` saying who provides
    them; elsewhere the test is skipped with ``how_to_get``.
    """
    from xpnet.data import DATASETS, data_dir

    directory = data_dir(dataset=dataset)
    if all((directory / name).is_file() for name in DATASETS[dataset].sha256):
        return directory
    problem = f"the {dataset} files are not in {directory}"
    if os.environ.get("CI"):
        pytest.fail(f"{problem}: {in_ci}")
    pytest.skip(f"{problem}: {how_to_get}")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory of the real MNIST files: ``XPNET_DATA``, else xpnet's cache."""
    return _data_files(
        "mnist", "run `xpnet data` to download them, or set XPNET_DATA",
        "CI must provide them (XPNET_DATA)",
    )  # fmt: skip


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The directory of the Fashion-MNIST files: ``XPNET_FASHION_DATA``, else Debian's
    ``dataset-fashion-mnist`` package, else xpnet's cache."""
    return _data_files(
        "fashion-mnist",
        "on Debian or Ubuntu `apt-get install dataset-fashion-mnist`; elsewhere run "
        "`xpnet data --dataset fashion-mnist`, or set XPNET_FASHION_DATA",
        "CI must provide them (apt-get install dataset-fashion-mnist)",
    )


@pytest.fixture(scope="session")
def mnist_rows(mnist_dir: Path) -> list:
    """The lab's ``get_mnist_data()``: mean image subtracted, images as rows."""
    from xpnet.data import read_data_sets
    from xpnet.preprocess import subtract_mean_image

    X_train, y_train, X_val, y_val, X_test, y_test = read_data_sets(mnist_dir)
    X_train, X_val, X_test = subtract_mean_image(X_train, X_val, X_test)
    return [X_train, y_train, X_val, y_val, X_test, y_test]


@pytest.fixture
def xp(backend: Backend):
    """The Array API namespace of ``backend``."""
    return backend.xp


@pytest.fixture
def backend_beside_numpy(backend: Backend) -> Backend:
    """``backend``, for a test that compares it with NumPy's numbers: on NumPy itself
    it is skipped, since compared with itself such a test could not fail (``nox -s fast``,
    NumPy alone, skips them all)."""
    if backend.name == "numpy":
        pytest.skip("NumPy is the reference this test compares with: on NumPy it could not fail")
    return backend


# The lab's toy problem (sections 1-5 of the handout).
TOY_INPUT_SIZE, TOY_HIDDEN_SIZE, TOY_NUM_CLASSES, TOY_NUM_INPUTS = 4, 10, 3, 5
# The handout's section 2 reference scores for the toy net on the toy data.
CORRECT_SCORES = np.asarray(
    [
        [-0.81233741, -1.27654624, -0.70335995],
        [-0.17129677, -1.18803311, -0.47310444],
        [-0.51590475, -1.01354314, -0.8504215],
        [-0.15419291, -0.48629638, -0.52901952],
        [-0.00618733, -0.12435261, -0.15226949],
    ]
)
# The handout's section 3 reference loss at reg=0.1.
CORRECT_LOSS = 1.30378789133


@pytest.fixture
def toy_net(backend: Backend) -> TwoLayerNet:
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
