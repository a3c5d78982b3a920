"""Array libraries beyond the backend table: lazy arrays (Dask, ndonnx placeholders), and
the oldest Array API version xpnet runs on."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CORRECT_LOSS, CORRECT_SCORES

from xpnet import TwoLayerNet, _checks, to_numpy
from xpnet.backend import Backend, has_values, resolve_backend
from xpnet.functional import cross_entropy, one_hot

#: The oldest Array API standard xpnet runs on (``__array_namespace_info__`` is 2023.12's).
MINIMUM_API_VERSION = "2023.12"


@pytest.fixture
def strict_at_minimum_version():
    """array-api-strict set to the minimum version; its flags restored afterwards."""
    xps = pytest.importorskip("array_api_strict")
    before = xps.get_array_api_strict_flags()
    xps.set_array_api_strict_flags(api_version=MINIMUM_API_VERSION)
    yield xps
    xps.set_array_api_strict_flags(**before)


def test_the_minimum_array_api_version_passes_the_toy_checks(strict_at_minimum_version, toy_data):
    xps = strict_at_minimum_version
    assert xps.get_array_api_strict_flags()["api_version"] == MINIMUM_API_VERSION
    X, y = toy_data
    np.random.seed(0)
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend="array_api_strict")
    assert net.xp.__array_api_version__ == MINIMUM_API_VERSION
    assert np.sum(np.abs(net.loss(X) - CORRECT_SCORES)) < 1e-7
    loss, _ = net.loss(X, y, reg=0.1)
    assert abs(loss - CORRECT_LOSS) < 1e-12
    np.testing.assert_array_equal(net.predict(X), np.argmax(CORRECT_SCORES, axis=1))
    stats = net.train(X, y, X, y, learning_rate=1e-1, reg=5e-6, num_iters=100)
    assert stats["loss_history"][-1] == pytest.approx(0.017143643532923733, rel=1e-9)


# Dask, through array_api_compat's namespace: predicts lazily, refuses to train.


@pytest.fixture
def dask_net():
    """The toy network on ``array_api_compat.dask.array``, and the same one on NumPy."""
    pytest.importorskip("dask.array", reason="needs pip install 'dask[array]'")
    import array_api_compat.dask.array as dask_xp

    return (
        TwoLayerNet(4, 10, 3, std=1e-1, backend=dask_xp, seed=0),
        TwoLayerNet(4, 10, 3, std=1e-1, seed=0),
    )


def test_predict_on_dask_is_lazy_and_runs_chunk_by_chunk(dask_net):
    import dask
    import dask.array as da

    net, reference = dask_net
    X = np.random.default_rng(0).standard_normal((300, 4))

    @dask.delayed
    def unreadable():
        raise RuntimeError("the last chunk was read")

    chunks = [da.from_array(X[:100]), da.from_array(X[100:200])]
    chunks.append(da.from_delayed(unreadable(), shape=(100, 4), dtype=np.float64))
    X_lazy = da.concatenate(chunks)

    labels = net.predict(X_lazy)
    assert isinstance(labels, da.Array)
    assert not has_values(labels)
    assert labels.chunks == ((100, 100, 100),)
    # Each chunk of labels needs its own chunk of X only: the first two compute,
    # though the third cannot.
    first_two = labels.blocks[:2].compute()
    np.testing.assert_array_equal(first_two, reference.predict(X[:200]))
    with pytest.raises(RuntimeError, match="last chunk"):
        labels.compute()
    probabilities = net.predict_proba(X_lazy[:200])
    assert isinstance(probabilities, da.Array)
    np.testing.assert_allclose(probabilities.compute(), reference.predict_proba(X[:200]))


def test_the_preprocessing_applies_to_dask_images_chunk_by_chunk(dask_net):
    import array_api_compat.dask.array as dask_xp
    import dask.array as da

    from xpnet.preprocess import fit_preprocessing

    images = np.random.default_rng(2).integers(0, 256, (100, 28, 28, 1)).astype(np.float32)
    preprocessing = fit_preprocessing("scale_and_center", images)
    rows = preprocessing.apply(dask_xp, da.from_array(images, chunks=(25, 28, 28, 1)))
    assert isinstance(rows, da.Array)
    assert rows.chunks == ((25, 25, 25, 25), (784,))
    np.testing.assert_array_equal(rows.compute(), preprocessing(images))


def test_a_dask_net_takes_numpy_and_answers_numpy(dask_net):
    net, reference = dask_net
    X = np.random.default_rng(1).standard_normal((50, 4))
    labels = net.predict(X)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, reference.predict(X))


def test_training_on_dask_is_refused_with_what_to_do_and_nothing_changed(dask_net, toy_data):
    import dask.array as da

    net, _ = dask_net
    X, y = toy_data
    before = {name: to_numpy(p) for name, p in net.params.items()}
    with pytest.raises(ValueError, match=r"lazy.*compute the data to NumPy first"):
        net.train(da.from_array(X), da.from_array(y), None, None, num_iters=5)
    for name, p in net.params.items():
        np.testing.assert_array_equal(to_numpy(p), before[name])
    assert net.last_training is None


def test_to_numpy_computes_a_dask_array():
    da = pytest.importorskip("dask.array", reason="needs pip install 'dask[array]'")
    host = to_numpy(da.arange(10, chunks=3) * 2)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, np.arange(10) * 2)


def test_lazy_asks_an_unlisted_library_whether_its_arrays_hold_values(backend):
    """A namespace off the backend table is asked, by an array of its own: a table
    library's namespace under another name is eager, Dask's is lazy."""
    unlisted = Backend("unlisted", backend.xp, backend.device)
    assert unlisted.spec is None
    assert not unlisted.lazy
    pytest.importorskip("dask.array", reason="needs pip install 'dask[array]'")
    import array_api_compat.dask.array as dask_xp

    dask = resolve_backend(dask_xp)
    assert dask.spec is None
    assert dask.lazy


# ndonnx placeholders: the checks and the loss trace to an ONNX graph.


@pytest.fixture
def ndonnx():
    pytest.importorskip("onnxruntime", reason="needs pip install ndonnx onnx onnxruntime")
    return pytest.importorskip("ndonnx", reason="needs pip install ndonnx onnx onnxruntime")


@pytest.mark.onnx
def test_to_numpy_refuses_a_placeholder_rather_than_wrap_it(ndonnx):
    placeholder = ndonnx.argument(shape=("N", 4), dtype=ndonnx.float32)
    with pytest.raises(TypeError, match="cannot convert a ndonnx"):
        to_numpy(placeholder)


@pytest.mark.onnx
def test_the_input_checks_and_the_loss_trace_on_a_symbolic_batch(ndonnx):
    import array_api_compat.numpy as np_xp
    import onnxruntime

    rng = np.random.default_rng(0)
    params = {
        "W1": rng.standard_normal((4, 6)).astype(np.float32),
        "b1": rng.standard_normal(6).astype(np.float32),
        "W2": rng.standard_normal((6, 3)).astype(np.float32),
        "b2": rng.standard_normal(3).astype(np.float32),
    }
    X = ndonnx.argument(shape=("N", 4), dtype=ndonnx.float32)
    y = ndonnx.argument(shape=("N",), dtype=ndonnx.int64)
    backend = resolve_backend(ndonnx)
    assert backend.lazy
    X_checked, from_host = _checks.features(backend, X, 4, ndonnx.float32)
    assert X_checked.shape == (None, 4)
    assert not from_host
    T = one_hot(ndonnx, y, 3, ndonnx.float32)
    traced = {name: ndonnx.asarray(value) for name, value in params.items()}
    loss, grads = cross_entropy(ndonnx, traced, X_checked, T)
    model = ndonnx.build({"X": X, "y": y}, {"loss": loss, **grads})
    runtime = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )

    for batch in (1, 7):
        X_host = rng.standard_normal((batch, 4)).astype(np.float32)
        y_host = rng.integers(0, 3, batch)
        names = ["loss", *grads]
        found = runtime.run(names, {"X": X_host, "y": y_host})
        outputs = dict(zip(names, found, strict=True))
        T_host = one_hot(np_xp, y_host, 3, np.float32)
        expected_loss, expected = cross_entropy(
            np_xp, {k: v.copy() for k, v in params.items()}, X_host, T_host
        )
        np.testing.assert_allclose(outputs["loss"], expected_loss, rtol=1e-6)
        for name, gradient in expected.items():
            np.testing.assert_allclose(outputs[name], gradient, rtol=1e-5, atol=1e-7)


def test_to_numpy_makes_a_sparse_array_dense():
    sparse = pytest.importorskip("sparse", reason="needs pip install sparse")
    dense = np.eye(4)
    host = to_numpy(sparse.COO.from_numpy(dense))
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, dense)
