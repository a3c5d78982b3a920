"""ONNX export: the traced model run by ONNX Runtime against ``predict`` on real MNIST."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="needs pip install ndonnx onnx onnxruntime")
onnx = pytest.importorskip("onnx", reason="needs pip install ndonnx onnx onnxruntime")
pytest.importorskip("ndonnx", reason="needs pip install ndonnx onnx onnxruntime")

from xpnet import TwoLayerNet  # noqa: E402
from xpnet.data import read_data_sets  # noqa: E402
from xpnet.errors import ModelFileError  # noqa: E402
from xpnet.export import export_onnx  # noqa: E402
from xpnet.pipeline import run  # noqa: E402
from xpnet.preprocess import fit_preprocessing  # noqa: E402

pytestmark = [pytest.mark.onnx, pytest.mark.mnist]

#: Probabilities must agree to this, by the dtype the model was trained in.
TOLERANCE = {"float32": 1e-5, "float64": 1e-4}
#: The recipe each dtype's model is trained with: both preprocessings get exported.
RECIPE = {"float32": "fast", "float64": "lab"}


@pytest.fixture(scope="module")
def test_images(mnist_dir):
    """The 10,000 test images, raw float32 pixels (N, 28, 28, 1), and their labels."""
    *_, X_test, y_test = read_data_sets(mnist_dir)
    return X_test, y_test


@pytest.fixture(scope="module", params=["float32", "float64"])
def trained(request, mnist_dir, tmp_path_factory):
    """A small network trained for 200 steps, saved; (net, model path, dtype)."""
    dtype = request.param
    recipe = RECIPE[dtype]
    result = run(recipe, data_dir=mnist_dir, dtype=dtype, num_iters=200, hidden_size=50)
    path = tmp_path_factory.mktemp(dtype) / "model.npz"
    result.net.save(path)
    return result.net, path, dtype


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def export_quietly(model, path=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float64 exported as float32
        return export_onnx(model, path)


def test_onnx_runtime_matches_predict_on_the_test_set(trained, test_images, tmp_path):
    net, _, dtype = trained
    X_test, y_test = test_images
    path = export_quietly(net, tmp_path / "net.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    labels, probabilities = session(path).run(["labels", "probabilities"], {"images": X_test})
    rows = net.preprocessing(X_test)
    assert labels.dtype == np.int64
    assert labels.shape == (10_000,)
    np.testing.assert_array_equal(labels, net.predict(rows))
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (10_000, 10)
    expected = net.predict_proba(rows)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE[dtype])
    assert np.mean(labels == y_test) > 0.85  # a trained network, not a constant answer


def test_the_graph_declares_one_input_and_two_outputs_with_a_dynamic_batch(trained, tmp_path):
    net, _, _ = trained
    graph = onnx.load(export_quietly(net, tmp_path / "net.onnx")).graph

    def shape(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    def elem(value):
        return onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)

    (images,) = graph.input
    assert (images.name, elem(images), shape(images)) == ("images", np.float32, ["N", 28, 28, 1])
    outputs = {value.name: (elem(value), shape(value)) for value in graph.output}
    assert outputs == {"labels": (np.int64, ["N"]), "probabilities": (np.float32, ["N", 10])}


@pytest.mark.parametrize("batch", [1, 1000])
def test_any_batch_size_runs(trained, test_images, tmp_path, batch):
    net, _, _ = trained
    images = test_images[0][-batch:]
    labels, probabilities = session(export_quietly(net, tmp_path / "net.onnx")).run(
        None, {"images": images}
    )
    assert labels.shape == (batch,)
    assert probabilities.shape == (batch, 10)
    np.testing.assert_array_equal(labels, net.predict(net.preprocessing(images)))


def test_a_float64_model_is_exported_in_float32_and_says_so(trained, tmp_path):
    net, _, dtype = trained
    if dtype == "float64":
        with pytest.warns(UserWarning, match="exported in float32"):
            export_onnx(net, tmp_path / "net.onnx")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            export_onnx(net, tmp_path / "net.onnx")
    initializers = onnx.load(tmp_path / "net.onnx").graph.initializer
    assert {onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in initializers} <= {
        np.dtype(np.float32),
        np.dtype(np.int64),
    }


def test_the_model_file_path_gives_the_default_output(trained):
    net, path, _ = trained
    written = export_quietly(path)
    assert written == path.with_suffix(".onnx")
    labels, _ = session(written).run(None, {"images": np.zeros((3, 28, 28, 1), np.float32)})
    np.testing.assert_array_equal(labels, net.predict(net.preprocessing(np.zeros((3, 784)))))


@pytest.mark.parametrize(
    ("images", "problem"),
    [
        (np.zeros((2, 784), np.float32), "rank"),
        (np.zeros((2, 28, 28, 1), np.uint8), "type"),
        (np.zeros((2, 27, 28, 1), np.float32), "dimension"),
    ],
    ids=["rows", "uint8", "27x28"],
)
def test_onnx_runtime_refuses_inputs_of_another_shape_or_dtype(trained, tmp_path, images, problem):
    net, _, _ = trained
    runtime = session(export_quietly(net, tmp_path / "net.onnx"))
    with pytest.raises(Exception, match=f"(?i){problem}"):
        runtime.run(None, {"images": images})


def test_a_network_without_preprocessing_is_refused_and_nothing_written(tmp_path):
    net = TwoLayerNet(784, 10, 10, seed=0)
    target = tmp_path / "net.onnx"
    target.write_bytes(b"the old file")
    with pytest.raises(ValueError, match="no preprocessing"):
        export_onnx(net, target)
    assert target.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]


def test_a_network_with_other_than_28x28_inputs_is_refused(tmp_path):
    net = TwoLayerNet(4, 10, 3, seed=0)
    net.preprocessing = fit_preprocessing("scale_and_center", np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(28, 28, 1\)"):
        export_onnx(net, tmp_path / "net.onnx")
    assert not list(tmp_path.iterdir())


def test_a_network_needs_an_output_path():
    with pytest.raises(ValueError, match="path="):
        export_onnx(TwoLayerNet(784, 10, 10, seed=0))


def test_the_model_file_is_never_overwritten(trained):
    _, path, _ = trained
    before = path.read_bytes()
    with pytest.raises(ValueError, match="would replace the model file"):
        export_onnx(path, path.parent / "." / path.name)
    assert path.read_bytes() == before


def test_a_file_that_is_no_model_is_refused(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(ModelFileError):
        export_onnx(bad)
    assert not bad.with_suffix(".onnx").exists()


def cli(*args, code=None):
    """``xpnet export`` in a subprocess; ``code`` runs first (to hide a library)."""
    command = [sys.executable, "-m", "xpnet.cli", *args]
    if code is not None:
        command = [
            sys.executable,
            "-c",
            f"{code}; import sys; from xpnet.cli import main; sys.exit(main(sys.argv[1:]))",
            *args,
        ]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_the_command_writes_a_model_that_onnx_runtime_runs(trained, test_images, tmp_path):
    net, path, dtype = trained
    target = tmp_path / "out" / "digits.onnx"
    done = cli("export", str(path), "--output", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {target}"
    assert ("exported in float32" in done.stderr) == (dtype == "float64")
    images = test_images[0][:500]
    labels, _ = session(target).run(None, {"images": images})
    np.testing.assert_array_equal(labels, net.predict(net.preprocessing(images)))


def test_the_command_writes_beside_the_model_by_default(trained):
    _, path, _ = trained
    path.with_suffix(".onnx").unlink(missing_ok=True)
    done = cli("export", str(path))
    assert done.returncode == 0, done.stderr
    assert path.with_suffix(".onnx").is_file()


def test_the_command_refuses_a_bad_model_file_in_one_line(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("hello")
    done = cli("export", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("xpnet: error:")
    assert "not an .npz model file" in done.stderr
    assert not bad.with_suffix(".onnx").exists()


def test_the_command_without_ndonnx_says_what_to_install(trained, tmp_path):
    _, path, _ = trained
    done = cli("export", str(path), "--output", str(tmp_path / "x.onnx"),
               code="import sys; sys.modules['ndonnx'] = None")  # fmt: skip
    assert done.returncode == 1
    assert "pip install ndonnx onnx onnxruntime" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "x.onnx").exists()


@pytest.fixture
def small_model(tmp_path):
    """An untrained 784-input network with a preprocessing, saved: enough to export."""
    net = TwoLayerNet(784, 8, 10, std=1e-2, dtype="float32", seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, (20, 784)).astype(np.float32)
    net.preprocessing = fit_preprocessing("subtract_mean_image", pixels)
    net.save(tmp_path / "model.npz")
    return tmp_path / "model.npz"


def special_output(kind, where):
    """An --output of ``kind`` at ``where``; a function that says whether it is intact."""
    if kind == "FIFO":
        os.mkfifo(where)
        return lambda: stat.S_ISFIFO(os.lstat(where).st_mode)
    target = {"symlink to /dev/stdout": "/dev/stdout", "symlink to /dev/null": "/dev/null"}[kind]
    where.symlink_to(target)
    node = os.lstat(target)  # /dev/stdout: a link, to this process's stdout
    return lambda: os.readlink(where) == target and same_node(os.lstat(target), node)


def same_node(a, b):
    return (a.st_dev, a.st_ino, a.st_mode, a.st_rdev) == (b.st_dev, b.st_ino, b.st_mode, b.st_rdev)


@pytest.mark.parametrize("kind", ["FIFO", "symlink to /dev/stdout", "symlink to /dev/null"])
def test_the_command_refuses_an_output_that_is_not_a_regular_file(small_model, tmp_path, kind):
    """Never renamed over: the FIFO, the link and the device stay what they were."""
    where = tmp_path / "out.onnx"
    intact = special_output(kind, where)
    done = cli("export", str(small_model), "--output", str(where))  # stdout: a pipe
    assert done.returncode == 1
    assert done.stderr.startswith(f"xpnet: error: cannot write {where}: it is a ")
    assert "not a regular file" in done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""
    assert intact()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "out.onnx"]
