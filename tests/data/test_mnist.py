"""MNIST on disk: the real files, where they are looked for, and corrupt copies."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest

from xpnet.data import DATASETS, DataError, data_dir, load, read_data_sets, verify

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.mnist
def test_real_mnist_files_verify(mnist_dir):
    assert all(verify(data_dir=mnist_dir).values())


@pytest.mark.mnist
def test_raw_mnist_shapes_and_labels(mnist_dir):
    X_train, y_train, X_test, y_test = load(data_dir=mnist_dir, download=False)
    assert (X_train.shape, X_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (X_test.shape, y_test.shape) == ((10000, 28, 28), (10000,))
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert X_train.mean() == pytest.approx(33.318421, abs=1e-6)


def read_raw_idx(path):
    """A gzipped IDX file's array, read with gzip and NumPy alone (not xpnet's reader): a
    4-byte magic whose last byte is the number of dimensions, their big-endian sizes,
    then the unsigned bytes."""
    payload = gzip.decompress(path.read_bytes())
    ndim = payload[3]
    shape = tuple(int(n) for n in np.frombuffer(payload, ">u4", count=ndim, offset=4))
    return np.frombuffer(payload, np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.fixture(scope="module")
def raw_training_set(mnist_dir):
    """The training file's images (60000, 28, 28) and labels (60000,), in file order."""
    images = read_raw_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_raw_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert (images.shape, labels.shape) == ((60000, 28, 28), (60000,))
    return images, labels


@pytest.mark.mnist
def test_read_data_sets_holds_out_the_first_5000_as_the_lab_does(mnist_dir, raw_training_set):
    images, labels = raw_training_set
    X_train, y_train, X_val, y_val, X_test, y_test = read_data_sets(mnist_dir)
    assert X_train.shape == (55000, 28, 28, 1)
    assert X_val.shape == (5000, 28, 28, 1)
    assert X_test.shape == (10000, 28, 28, 1)
    assert X_train.dtype.kind == "f"
    assert (X_train.min(), X_train.max()) == (0.0, 255.0)
    assert {y.dtype for y in (y_train, y_val, y_test)} == {np.dtype(np.int64)}
    np.testing.assert_array_equal(X_val[0, :, :, 0], images[0])  # the file's first image
    np.testing.assert_array_equal(X_train[0, :, :, 0], images[5000])
    assert y_val[:5].tolist() == [5, 0, 4, 1, 9]
    assert (y_train[0], y_train[-1]) == (labels[5000], labels[-1])


@pytest.mark.mnist
@pytest.mark.parametrize("num_validation", [0, 1, 12_345, 59_999])
def test_read_data_sets_holds_out_the_first_num_validation(
    mnist_dir, raw_training_set, num_validation
):
    images, labels = raw_training_set
    X_train, y_train, X_val, y_val, _, _ = read_data_sets(
        mnist_dir, num_validation=num_validation, download=False
    )
    assert X_val.shape == (num_validation, 28, 28, 1)
    np.testing.assert_array_equal(X_val[..., 0], images[:num_validation])
    np.testing.assert_array_equal(y_val, labels[:num_validation])
    np.testing.assert_array_equal(X_train[..., 0], images[num_validation:])
    np.testing.assert_array_equal(y_train, labels[num_validation:])


@pytest.mark.mnist
@pytest.mark.parametrize("num_validation", [-1, 60_000, 2.5, True])
def test_read_data_sets_refuses_a_validation_size_that_leaves_no_training(
    mnist_dir, num_validation
):
    with pytest.raises(DataError, match=r"num_validation=.* must leave at least one"):
        read_data_sets(mnist_dir, num_validation=num_validation, download=False)


@pytest.mark.mnist
def test_the_labs_get_mnist_data_works_unchanged(mnist_rows):
    X_train, _, X_val, _, X_test, _ = mnist_rows
    assert X_train.shape == (55000, 784)
    assert X_val.shape == (5000, 784)
    assert X_test.shape == (10000, 784)
    assert abs(float(X_train.mean())) < 1e-3


def test_where_the_data_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir(data_dir=tmp_path / "arg") == tmp_path / "arg"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("XPNET_DATA")
    assert data_dir() == tmp_path / "cache" / "xpnet" / "mnist"


@pytest.mark.mnist
def test_fashion_mnist_prefers_the_system_package(tmp_path, monkeypatch, mnist_dir):
    system = tmp_path / "usr-share"
    shutil.copytree(mnist_dir, system)
    monkeypatch.delenv("XPNET_FASHION_DATA", raising=False)
    monkeypatch.setitem(
        DATASETS,
        "fashion-mnist",
        DATASETS["fashion-mnist"].__class__(
            **{**DATASETS["fashion-mnist"].__dict__, "system_dirs": (str(system),)}
        ),
    )
    assert data_dir(dataset="fashion-mnist") == system


@pytest.mark.mnist
def test_fashion_mnist_from_debian(monkeypatch):
    directory = DATASETS["fashion-mnist"].system_dirs[0]
    monkeypatch.delenv("XPNET_FASHION_DATA", raising=False)
    if str(data_dir(dataset="fashion-mnist")) != directory:
        message = f"Debian's dataset-fashion-mnist is not installed in {directory}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"{message}: apt-get install dataset-fashion-mnist")
    assert all(verify(dataset="fashion-mnist").values())
    X_train, *_, y_test = read_data_sets(dataset="fashion-mnist")
    assert X_train.shape == (55000, 28, 28, 1)
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        read_data_sets(dataset="cifar")


@pytest.fixture
def mnist_copy(tmp_path, mnist_dir):
    """A writable copy of the MNIST files, to corrupt."""
    copy = tmp_path / "mnist"
    shutil.copytree(mnist_dir, copy)
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


def rewrite(path, change):
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))


@pytest.mark.mnist
def test_truncated_gzip_is_reported(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        read_data_sets(mnist_copy, download=False)


@pytest.mark.mnist
def test_wrong_magic_is_reported(mnist_copy):
    rewrite(mnist_copy / "t10k-images-idx3-ubyte.gz", lambda b: b"\x00\x00\x08\x01" + b[4:])
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        read_data_sets(mnist_copy, download=False)


@pytest.mark.mnist
def test_wrong_count_is_reported(mnist_copy):
    rewrite(mnist_copy / "t10k-labels-idx1-ubyte.gz", lambda b: b[:8] + b[8:-10])
    with pytest.raises(DataError, match="truncated"):
        read_data_sets(mnist_copy, download=False)


@pytest.mark.mnist
def test_label_count_must_match_images(mnist_copy):
    rewrite(
        mnist_copy / "t10k-labels-idx1-ubyte.gz",
        lambda b: b[:4] + (9990).to_bytes(4, "big") + b[8:-10],
    )
    with pytest.raises(DataError, match="expected 10,000 uint8 labels"):
        read_data_sets(mnist_copy, download=False)


@pytest.mark.mnist
def test_label_above_nine_is_reported(mnist_copy):
    rewrite(mnist_copy / "t10k-labels-idx1-ubyte.gz", lambda b: b[:20] + b"\x0c" + b[21:])
    with pytest.raises(DataError, match=r"label 12 is not a class 0\.\.9"):
        read_data_sets(mnist_copy, download=False)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(DataError, match="xpnet data"):
        read_data_sets(tmp_path, download=False)


@pytest.mark.mnist
def test_corrupt_files_fail_verification(mnist_copy):
    rewrite(mnist_copy / "train-labels-idx1-ubyte.gz", lambda b: b[:-1] + b"\x00")
    status = verify(data_dir=mnist_copy)
    assert status["train-labels-idx1-ubyte.gz"] is False
    assert status["t10k-labels-idx1-ubyte.gz"] is True
