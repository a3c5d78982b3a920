"""Model files: round trips across backends, and every kind of bad file rejected."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.errors import ModelFileError
from xpnet.model_file import FORMAT_VERSION, read_model
from xpnet.preprocess import fit_preprocessing


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
    assert net.last_training["settings"]["num_iters"] == 20


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
    "format 1": (
        lambda a, m: (a, {**m, "format_version": 1, "preprocessing": "subtract_mean_image"}),
        "model format 1 was never released; this xpnet reads format 2: train and save",
    ),
    "format 0": (lambda a, m: (a, {**m, "format_version": 0}), "bad format_version 0"),
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


# Crafted files: every one a ModelFileError that says what is wrong, never a traceback.


def npy_bytes(array=None, *, header=None, payload=b""):
    """The bytes of a .npy file: ``array``'s, or a hand-written ``header`` and ``payload``."""
    buffer = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
        return buffer.getvalue()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def good_members(trained, meta=None):
    arrays, default_meta = good_arrays(trained)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members["metadata.npy"] = npy_bytes(np.array(json.dumps(meta or default_meta)))
    return members


def test_a_npy_file_renamed_npz_is_refused(trained, tmp_path):
    path = tmp_path / "model.npz"
    np.save(path.with_suffix(".npy"), to_numpy(trained.params["W1"]))
    os.replace(path.with_suffix(".npy"), path)
    with pytest.raises(ModelFileError, match=r"not an \.npz model file"):
        TwoLayerNet.load(path)


def test_a_text_file_is_not_called_pickled(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("W1 = [[0.1, 0.2]]\n")
    with pytest.raises(ModelFileError, match=r"not an \.npz model file") as info:
        read_model(path)
    assert "pickled" not in str(info.value)


def test_members_without_the_npy_suffix_are_refused(trained, tmp_path):
    members = {name[:-4]: data for name, data in good_members(trained).items()}
    write_zip(tmp_path / "m.npz", members)
    with pytest.raises(ModelFileError, match=r"are not \.npy arrays"):
        read_model(tmp_path / "m.npz")


def test_a_huge_declared_shape_is_refused_before_allocating(trained, tmp_path):
    members = good_members(trained)
    header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    members["W1.npy"] = npy_bytes(header=header, payload=b"\0" * 800)
    write_zip(tmp_path / "m.npz", members)
    assert (tmp_path / "m.npz").stat().st_size < 4096
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"declares shape \(100000, 100000\)"):
            read_model(tmp_path / "m.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_a_truncated_array_is_refused(trained, tmp_path):
    members = good_members(trained)
    members["W1.npy"] = members["W1.npy"][:-8]
    write_zip(tmp_path / "m.npz", members)
    with pytest.raises(ModelFileError, match="W1"):
        read_model(tmp_path / "m.npz")


def good_meta():
    return {
        "format": "xpnet-model",
        "format_version": FORMAT_VERSION,
        "sizes": {"input_size": 4, "hidden_size": 10, "output_size": 3},
        "dtype": "float64",
    }


BAD_METADATA = {
    "dataset as a list": ({"dataset": ["mnist"]}, "metadata dataset must be str, got list"),
    "seed as a string": ({"seed": "7"}, "metadata seed must be int"),
    "results as a number": ({"results": 0.98}, "metadata results must be dict"),
    "a result as text": ({"results": {"test_acc": "high"}}, "results.test_acc must be"),
    "training as a list": ({"training": [1]}, "metadata training must be dict or null"),
    "iterations as a float": ({"training": {"iterations": 1.5}}, "training.iterations must"),
    "interrupted as a number": ({"interrupted": 1}, "metadata interrupted must be bool"),
    "sizes as strings": (
        {"sizes": {"input_size": "4", "hidden_size": 10, "output_size": 3}},
        "lacks the sizes",
    ),
    "preprocessing as a name": (
        {"preprocessing": "subtract_mean_image"},
        "metadata preprocessing must be dict, got str 'subtract_mean_image'",
    ),
    "preprocessing without its mean": (
        {"preprocessing": {"name": "scale_and_center", "scale": 0.5}},
        "one without the other",
    ),
}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_metadata_of_the_wrong_json_type_is_refused(trained, tmp_path, case):
    change, message = BAD_METADATA[case]
    write_zip(tmp_path / "m.npz", good_members(trained, {**good_meta(), **change}))
    with pytest.raises(ModelFileError, match=message):
        read_model(tmp_path / "m.npz")


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_metadata_is_refused(trained, tmp_path, depth):
    members = good_members(trained)
    deep = json.dumps(good_meta())[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    members["metadata.npy"] = npy_bytes(np.array(deep))
    write_zip(tmp_path / "m.npz", members)
    with pytest.raises(ModelFileError, match="nests deeper than 100 levels"):
        read_model(tmp_path / "m.npz")


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("metadata", "message"),
    [({"x": nested(100)}, "nests deeper than 100 levels"),
     ({"x": nested(5_000)}, "nests deeper than 100 levels"),
     ({"notes": "a" * 2**20}, r"takes 1,04\d,\d{3} bytes as JSON, more than the 1,048,576")],
    ids=["depth 100", "depth 5000", "over 1 MiB"],
)  # fmt: skip
def test_save_refuses_metadata_that_load_would_refuse_and_writes_nothing(
    trained, tmp_path, metadata, message
):
    with pytest.raises(ValueError, match=message):
        trained.save(tmp_path / "m.npz", metadata)
    assert list(tmp_path.iterdir()) == []


def test_metadata_just_within_the_bounds_saves_and_loads(trained, tmp_path):
    trained.save(tmp_path / "m.npz", {"x": nested(99), "notes": "a" * (2**20 - 4096)})
    assert len(TwoLayerNet.load(tmp_path / "m.npz").metadata["notes"]) == 2**20 - 4096


def test_big_endian_arrays_are_valid(trained, tmp_path):
    arrays, meta = good_arrays(trained)
    swapped = {k: v.astype(">f8") for k, v in arrays.items()}
    write_npz(tmp_path / "be.npz", metadata=np.array(json.dumps(meta)), **swapped)
    net = TwoLayerNet.load(tmp_path / "be.npz")
    for name, p in trained.params.items():
        np.testing.assert_array_equal(net.params[name], to_numpy(p))


# Saving: reserved keys, permissions, and the preprocessing that goes with the model.


@pytest.mark.parametrize("key", ["dtype", "sizes", "format", "format_version", "training"])
def test_save_refuses_reserved_metadata_keys_and_writes_nothing(trained, tmp_path, key):
    with pytest.raises(ValueError, match=re.escape(f"may not set ['{key}']")):
        trained.save(tmp_path / "m.npz", {key: "float32"})
    assert list(tmp_path.iterdir()) == []


def test_saving_over_a_private_file_keeps_it_private(trained, tmp_path):
    path = tmp_path / "m.npz"
    trained.save(path)
    path.chmod(0o600)
    trained.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_preprocessing_travels_with_the_model(trained, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 2, 2)).astype(np.float32)
    trained.preprocessing = fit_preprocessing("scale_and_center", images)
    trained.save(tmp_path / "m.npz")
    net = TwoLayerNet.load(tmp_path / "m.npz", dtype="float32")
    assert net.preprocessing.name == "scale_and_center"
    np.testing.assert_array_equal(net.preprocessing.mean, trained.preprocessing.mean)
    np.testing.assert_array_equal(
        net.predict(net.preprocessing(images)), trained.predict(trained.preprocessing(images))
    )


def test_a_network_saved_without_a_preprocessing_loads_without_one(trained, tmp_path):
    assert trained.preprocessing is None
    trained.save(tmp_path / "m.npz")
    net = TwoLayerNet.load(tmp_path / "m.npz")
    assert net.preprocessing is None
    assert "preprocessing" not in net.metadata
    assert net.metadata["format_version"] == FORMAT_VERSION


def test_a_loaded_model_trains_further(trained, toy_data, tmp_path):
    trained.save(tmp_path / "m.npz")
    net = TwoLayerNet.load(tmp_path / "m.npz")
    net.train(*toy_data, *toy_data, num_iters=3)  # its arrays are writable
    assert net.last_training["iterations"] == 3


CRAFTED_PREPROCESSING = {
    "scale NaN": ("subtract_mean_image", float("nan"), 100.0, "scales pixels by 1.0, not nan"),
    "scale infinite": ("scale_and_center", float("inf"), 0.1, "not inf"),
    "scale zero": ("subtract_mean_image", 0.0, 100.0, "not 0.0"),
    "scale negative": ("scale_and_center", -1.0, 0.1, "not -1.0"),
    "scale absurd": ("subtract_mean_image", 1e300, 100.0, "not 1e+300"),
    "another scale": ("scale_and_center", 1.0, 0.1, "not 1.0"),
    "mean absurd": ("subtract_mean_image", 1.0, 3e38, "between 0 and 255"),
    "mean negative": ("subtract_mean_image", 1.0, -5.0, "between 0 and 255"),
    "mean beyond scaled pixels": ("scale_and_center", float(np.float32(1 / 255)), 2.0,
                                  "between 0 and 1"),
}  # fmt: skip


@pytest.mark.parametrize("case", CRAFTED_PREPROCESSING, ids=list(CRAFTED_PREPROCESSING))
def test_a_preprocessing_that_cannot_have_been_fitted_is_refused_at_load(trained, tmp_path, case):
    """Not after it has made an overflow, a NaN blamed on the data, or a 0.0035 accuracy."""
    name, scale, mean_value, message = CRAFTED_PREPROCESSING[case]
    arrays, meta = good_arrays(trained)
    meta = {**meta, "preprocessing": {"name": name, "scale": scale}}
    mean = np.full(4, mean_value, dtype=np.float32)
    path = tmp_path / "crafted.npz"
    write_npz(path, metadata=np.array(json.dumps(meta)), preprocessing_mean=mean, **arrays)
    with pytest.raises(ModelFileError, match=re.escape(message)) as caught:
        TwoLayerNet.load(path)
    assert str(path) in str(caught.value)


def test_a_fitted_preprocessing_at_the_edges_of_the_pixel_range_loads(trained, tmp_path):
    for name, images in [
        ("subtract_mean_image", np.zeros((3, 4), dtype=np.float32)),
        ("scale_and_center", np.full((3, 4), 255, dtype=np.float32)),
    ]:
        trained.preprocessing = fit_preprocessing(name, images)
        trained.save(tmp_path / f"{name}.npz")
        loaded = TwoLayerNet.load(tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(loaded.preprocessing.mean, trained.preprocessing.mean)
