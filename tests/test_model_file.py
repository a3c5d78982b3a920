"""Model files: round trips across backends, and every kind of bad file rejected."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.errors import ModelFileError
from xpnet.model_file import FORMAT_VERSION, read_model


@pytest.fixture
def trained(toy_data):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, seed=0)
    net.train(X, y, X, y, learning_rate=1e-1, num_iters=20)
    return net


def test_a_model_saved_on_numpy_loads_on_every_backend(trained, toy_data, tmp_path, backend):
    path = tmp_path / "model.npz"
    trained.save(path, {"results": {"val_acc": 1.0}})
    net = TwoLayerNet.load(path, backend=backend)
    assert net.backend == backend
    for name, p in trained.params.items():
        np.testing.assert_array_equal(to_numpy(net.params[name]), to_numpy(p))
    X, _ = toy_data
    np.testing.assert_array_equal(net.predict(X), trained.predict(X))
    assert net.metadata["results"] == {"val_acc": 1.0}
    assert net.metadata["sizes"] == {"input_size": 4, "hidden_size": 10, "output_size": 3}
    assert net.training["settings"]["num_iters"] == 20


def test_a_model_saved_on_any_backend_loads_on_numpy(backend, toy_data, tmp_path):
    X, y = toy_data
    net = TwoLayerNet(4, 10, 3, std=1e-1, backend=backend, dtype="float32", seed=1)
    net.train(X, y, X, y, learning_rate=1e-1, num_iters=20)
    net.save(tmp_path / "m.npz")
    again = TwoLayerNet.load(tmp_path / "m.npz")
    assert again.params["W1"].dtype == np.float32
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


def test_load_does_not_touch_the_global_random_state(trained, tmp_path):
    trained.save(tmp_path / "m.npz")
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    TwoLayerNet.load(tmp_path / "m.npz")
    assert np.random.rand() == expected


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    trained.save(path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def good_arrays(trained):
    arrays = {name: to_numpy(p) for name, p in trained.params.items()}
    meta = {
        "format": "xpnet-model",
        "format_version": FORMAT_VERSION,
        "sizes": {"input_size": 4, "hidden_size": 10, "output_size": 3},
        "dtype": "float64",
    }
    return arrays, meta


BAD_MODELS = {
    "missing key": (lambda a, m: ({k: v for k, v in a.items() if k != "b2"}, m), "missing"),
    "extra key": (lambda a, m: ({**a, "W3": np.zeros(2)}, m), "unexpected"),
    "wrong shape": (lambda a, m: ({**a, "W2": np.zeros((10, 4))}, m), "W2 has shape"),
    "wrong dtype": (lambda a, m: ({**a, "b1": a["b1"].astype(np.float32)}, m), "b1 has shape"),
    "NaN weights": (lambda a, m: ({**a, "W1": a["W1"] * np.nan}, m), "NaN"),
    "newer format": (
        lambda a, m: (a, {**m, "format_version": FORMAT_VERSION + 1, "xpnet_version": "9.0"}),
        "upgrade xpnet",
    ),
    "not xpnet": (lambda a, m: (a, {**m, "format": "other"}), "does not describe an xpnet"),
    "bad dtype name": (lambda a, m: (a, {**m, "dtype": "int8"}), "is not one of"),
    "no sizes": (lambda a, m: (a, {k: v for k, v in m.items() if k != "sizes"}), "lacks the"),
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_model_files_are_rejected(trained, tmp_path, case):
    change, message = BAD_MODELS[case]
    arrays, meta = change(*good_arrays(trained))
    path = tmp_path / "bad.npz"
    write_npz(path, metadata=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ModelFileError, match=message):
        TwoLayerNet.load(path)


def test_pickled_objects_are_never_loaded(trained, tmp_path):
    arrays, _ = good_arrays(trained)
    path = tmp_path / "pickle.npz"
    write_npz(path, metadata=np.array([{"evil": "payload"}], dtype=object), **arrays)
    with pytest.raises(ModelFileError, match="pickled Python objects"):
        read_model(path)


def test_metadata_must_be_json(trained, tmp_path):
    arrays, _ = good_arrays(trained)
    path = tmp_path / "nojson.npz"
    write_npz(path, metadata=np.array("{not json"), **arrays)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read_model(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"not a model"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"junk\.npz"):
        read_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="file not found"):
        TwoLayerNet.load(tmp_path / "none.npz")
