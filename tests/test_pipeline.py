"""The library pipeline: run, save_run and evaluate, on the real data."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.errors import DataError, ModelFileError, TrainingDivergedError, TrainingInterrupted
from xpnet.pipeline import (
    TRAIN_ROWS,
    check_output_dir,
    evaluate,
    make_net,
    plan_resumed,
    plan_run,
    prepare_data,
    recipe_with,
    run,
    run_plan,
    save_run,
    train_and_measure,
)
from xpnet.training import read_checkpoint

pytestmark = pytest.mark.mnist

SHORT = {"num_iters": 200, "hidden_size": 32}


@pytest.fixture(scope="module")
def fast_data(mnist_dir):
    return prepare_data("scale_and_center", data_dir=mnist_dir)


@pytest.fixture(scope="module")
def short_result(fast_data):
    return run("fast", data=fast_data, seed=0, **SHORT)


def test_prepared_data_knows_its_classes_and_preprocessing(fast_data):
    assert fast_data.num_classes == 10
    assert fast_data.X_train.shape == (TRAIN_ROWS, 784) == (55000, 784)
    assert fast_data.y_val[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the file's first
    assert fast_data.X_train.dtype == np.float32
    assert fast_data.preprocessing.name == "scale_and_center"
    np.testing.assert_allclose(fast_data.X_train.mean(axis=0), 0, atol=1e-4)  # float32 sums


def test_run_trains_and_measures(short_result):
    result = short_result
    assert result.net.sizes == (784, 32, 10)
    assert len(result.history["loss_history"]) == 200
    assert 0.8 < result.val_acc <= 1
    assert result.test_acc == pytest.approx(result.confusion.trace() / result.confusion.sum())
    assert result.confusion.sum() == 10_000
    assert result.net.preprocessing.name == "scale_and_center"


def test_a_saved_run_evaluates_from_its_file_alone(short_result, tmp_path, mnist_dir):
    written = save_run(short_result, tmp_path)
    names = {p.name for p in written}
    assert names == {
        "model.npz",
        "history.json",
        "loss_accuracy.png",
        "weights.png",
        "confusion.png",
    }
    found = evaluate(tmp_path / "model.npz", data_dir=mnist_dir)
    assert found.test_acc == pytest.approx(short_result.test_acc, abs=1e-12)
    np.testing.assert_array_equal(found.confusion, short_result.confusion)


def test_a_directory_that_holds_another_run_is_replaced_only_with_overwrite(short_result, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert check_output_dir(out) == out  # empty: fine
    (out / "notes.txt").write_text("mine\n")
    first = save_run(short_result, out)  # other files only: fine
    before = {p: p.read_bytes() for p in first}
    for refused in (lambda: check_output_dir(out), lambda: save_run(short_result, out)):
        with pytest.raises(FileExistsError) as raised:
            refused()
        message = str(raised.value)
        assert message.startswith(f"output directory {out} holds another run's files (model.npz, ")
        assert "give overwrite=True to replace it" in message
        assert "--" not in message  # the Python API speaks of its argument
    assert {p: p.read_bytes() for p in first} == before
    assert save_run(short_result, out, overwrite=True) == first
    assert (out / "notes.txt").read_text() == "mine\n"
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        check_output_dir(out, overwrite="yes")


def test_threads_given_to_run_are_recorded_and_a_bad_count_is_refused_first(fast_data, tmp_path):
    result = run("fast", data=fast_data, seed=0, threads=2, num_iters=2, hidden_size=32)
    assert result.net.last_training["threads"] == 2
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        run("fast", data=fast_data, seed=0, threads=0, num_iters=2, hidden_size=32)
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        evaluate(tmp_path / "not-read.npz", threads=0)  # before the file is read


def test_raw_images_need_only_the_model_file(short_result, tmp_path, mnist_dir):
    from xpnet.data import read_data_sets

    short_result.net.save(tmp_path / "m.npz")
    net = TwoLayerNet.load(tmp_path / "m.npz")
    *_, X_test, _y_test = read_data_sets(mnist_dir)
    predicted = net.predict(net.preprocessing(X_test))
    np.testing.assert_array_equal(predicted, short_result.test_predictions)


def test_a_model_file_without_preprocessing_is_refused_before_any_data_is_read(tmp_path):
    TwoLayerNet(784, 8, 10, seed=0).save(tmp_path / "bare.npz", {"dataset": "mnist"})
    missing = tmp_path / "no-data-here"  # reading it would fail: the file fails first
    with pytest.raises(ModelFileError, match=r"bare\.npz holds no preprocessing") as info:
        evaluate(tmp_path / "bare.npz", data_dir=missing)
    assert "`xpnet train`" in str(info.value)
    assert "set net.preprocessing" in str(info.value)
    assert not missing.exists()


@pytest.mark.parametrize(
    ("recipe", "overrides", "reg", "weight_decay"),
    [
        ("best", {"reg": 0.02}, 0.02, 0.01),  # an L2 term beside the recipe's decay
        ("best", {"weight_decay": 0.02}, 0.0, 0.02),
        ("lab", {"optimizer": "adamw"}, 5e-6, 0.0),  # the recipe's L2 term stays one
        ("best", {"optimizer": "sgd", "weight_decay": 0.0}, 0.0, 0.0),
    ],
)
def test_overrides_of_reg_and_weight_decay_are_taken_as_given(recipe, overrides, reg, weight_decay):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = plan_run(recipe, **overrides).settings
    assert (settings.reg, settings.weight_decay) == (reg, weight_decay)


def test_bad_regularisation_is_named_as_given():
    with pytest.raises(ValueError, match="reg must be in"):
        plan_run("best", reg=-1.0)
    with pytest.raises(ValueError, match=r"weight_decay=0\.01 is AdamW's"):
        plan_run("best", optimizer="sgd")  # the recipe's weight decay, refused with SGD


def test_a_plan_in_epochs_counts_the_training_rows(fast_data):
    assert plan_run("best", epochs=2).recipe.num_iters == 2 * (TRAIN_ROWS // 128)
    rows = fast_data.X_train.shape[0]
    planned = plan_run("fast", epochs=3, batch_size=50, data=fast_data)
    assert planned.settings.num_iters == 3 * (rows // 50)
    with pytest.raises(ValueError, match="give num_iters or epochs, not both"):
        plan_run("fast", epochs=3, num_iters=10)


def test_the_recipe_can_be_changed_field_by_field():
    recipe = recipe_with("lab", hidden_size=50, momentum=0.5)
    assert (recipe.hidden_size, recipe.momentum, recipe.learning_rate) == (50, 0.5, 1e-3)
    with pytest.raises(ValueError, match="unknown recipe settings"):
        recipe_with("lab", hiden_size=50)
    with pytest.raises(ValueError, match="unknown recipe 'slow'"):
        recipe_with("slow")


def test_a_run_stopped_over_another_leaves_none_of_the_others_files(short_result, fast_data,
                                                                    tmp_path):  # fmt: skip
    """A run replacing another (overwrite) that was stopped before it was measured writes
    its model only: the other run's history and plots, and an evaluation's picture of the
    other model, are removed, not left to pass for this run's."""
    out = tmp_path / "out"
    first = save_run(short_result, out)
    (out / "misclassified.png").write_bytes(b"the other model's")

    def press(it, loss, lr):
        if it == 30:
            os.kill(os.getpid(), 2)

    with pytest.raises(TrainingInterrupted) as info:
        run("fast", data=fast_data, progress=press, **SHORT)
    assert save_run(info.value.result, out, overwrite=True) == [out / "model.npz"]
    assert sorted(p.name for p in out.iterdir()) == ["model.npz"]
    assert len(first) > 1  # the history and the plots were there


def test_a_run_saved_beside_its_own_checkpoint_is_not_refused(fast_data, tmp_path):
    """A run that wrote its checkpoint into a directory saves there without overwrite (its
    checkpoint is its own); another run's checkpoint is refused."""
    out = tmp_path / "out"
    result = run("fast", data=fast_data, seed=0, checkpoint=out / "checkpoint.npz", **SHORT)
    other = run("fast", data=fast_data, seed=1, **SHORT)
    with pytest.raises(FileExistsError, match=r"another run's files \(checkpoint\.npz\)"):
        save_run(other, out)
    assert save_run(result, out)[0] == out / "model.npz"


@pytest.mark.parametrize(
    ("other", "named"),
    [({"dataset": "fashion-mnist"}, "dataset 'fashion-mnist' (the checkpoint's: 'mnist')"),
     ({"preprocessing": "subtract_mean_image"},
      "preprocessing 'subtract_mean_image' (the checkpoint's: 'scale_and_center')")],
)  # fmt: skip
def test_resuming_on_other_data_is_refused_before_any_is_read(fast_data, tmp_path, other, named):
    """Another dataset or preprocessing than the checkpoint's is refused when the resumed
    run is planned, naming it: before its data is read or downloaded."""
    path = tmp_path / "checkpoint.npz"
    run("fast", data=fast_data, seed=0, checkpoint=path, **SHORT)
    with pytest.raises(ValueError, match="differs from the checkpoint's in") as refused:
        plan_resumed(read_checkpoint(path), **other)
    assert named in str(refused.value)


def test_ctrl_c_returns_the_partial_run(fast_data):
    def press(it, loss, lr):
        if it == 30:
            os.kill(os.getpid(), 2)

    with pytest.raises(TrainingInterrupted) as info:
        run("fast", data=fast_data, progress=press, **SHORT)
    assert info.value.result.interrupted
    assert len(info.value.result.history["loss_history"]) == 31
    assert info.value.result.metadata()["interrupted"] is True
    assert info.value.result.net.last_training["iterations"] == 31  # the net keeps the run


@pytest.mark.parametrize(
    ("other", "differs"),
    [
        ({"hidden_size": 16}, "its sizes 784-16-10, the plan's 784-32-10"),
        ({"seed": 1}, "its seed 1, the plan's 0"),
        ({"dtype": "float32"}, "its dtype float32, the plan's float64"),
    ],
)
def test_a_network_other_than_the_plans_is_refused_before_any_step(fast_data, other, differs):
    plan = plan_run("fast", data=fast_data, **SHORT)
    net = make_net(plan_run("fast", data=fast_data, **{**SHORT, **other}).settings, fast_data)
    before = net.params["W1"].copy()
    with pytest.raises(ValueError, match=rf"{differs}\).*make_net\(plan\.settings, data\)"):
        train_and_measure(net, plan, fast_data)
    np.testing.assert_array_equal(net.params["W1"], before)
    assert net.last_training is None


def test_a_diverging_run_leaves_the_net_its_last_finite_parameters(fast_data):
    plan = plan_run("fast", data=fast_data, learning_rate=1e6, **SHORT)
    net = make_net(plan.settings, fast_data)
    with pytest.raises(TrainingDivergedError) as info:
        train_and_measure(net, plan, fast_data)
    assert net.params is info.value.params
    assert all(np.isfinite(p).all() for p in net.params.values())


# Evaluating against the wrong data: refused, saying why.


def test_a_model_evaluated_on_another_datasets_files_is_refused(short_result, tmp_path, mnist_dir):
    short_result.net.save(tmp_path / "m.npz", {"dataset": "fashion-mnist"})
    with pytest.raises(DataError, match="is mnist's, not fashion-mnist's"):
        evaluate(tmp_path / "m.npz", data_dir=mnist_dir)


def test_a_model_with_fewer_classes_than_the_labels_is_refused(fast_data, tmp_path, mnist_dir):
    net = TwoLayerNet(784, 8, 3, seed=0)
    net.preprocessing = fast_data.preprocessing
    net.save(tmp_path / "three.npz", {"dataset": "mnist"})
    with pytest.raises(DataError, match="has only 3 classes"):
        evaluate(tmp_path / "three.npz", data_dir=mnist_dir)


def test_an_empty_test_file_is_refused(short_result, tmp_path, mnist_dir):
    data = tmp_path / "data"
    shutil.copytree(mnist_dir, data)
    for name, header in [
        ("t10k-images-idx3-ubyte.gz", struct.pack(">HBBIII", 0, 8, 3, 0, 28, 28)),
        ("t10k-labels-idx1-ubyte.gz", struct.pack(">HBBI", 0, 8, 1, 0)),
    ]:
        (data / name).write_bytes(gzip.compress(header))
    short_result.net.save(tmp_path / "m.npz", {"dataset": "mnist"})
    with pytest.raises(DataError, match="not mnist's"):
        evaluate(tmp_path / "m.npz", data_dir=data)  # an empty file is not MNIST's either
    from xpnet.data import mnist

    with pytest.raises(DataError, match="holds no mnist test images"):
        mnist.load_test(data_dir=data)


# The output directory, checked before any training.


def test_an_output_directory_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        check_output_dir(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match="lies under"):
        check_output_dir(tmp_path / "file" / "out")


@pytest.mark.parametrize("create", [True, False])
def test_an_unwritable_output_directory_is_refused(tmp_path, create):
    if os.geteuid() == 0:  # root writes anywhere but in kernel file systems
        target = Path("/sys/xpnet-output")
    else:
        (tmp_path / "locked").mkdir(mode=0o500)
        target = tmp_path / "locked" / "out"
    with pytest.raises(PermissionError, match="not writable"):
        check_output_dir(target, create=create)
    assert not target.exists()


def test_an_output_directory_is_checked_without_being_made_until_the_first_file(tmp_path):
    target = tmp_path / "new" / "out"
    assert check_output_dir(target, create=False) == target
    assert not (tmp_path / "new").exists()  # save_run makes it, with the model


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"augment": "bogus"}, ValueError, r"augment must be one of \('none', 'affine'"),
        ({"preprocessing": "bogus"}, ValueError, "preprocessing must be one of"),
        ({"hidden_size": 2.5}, TypeError, "hidden_size must be a positive integer"),
        ({"optimizer": "adam", "momentum": 0.9}, ValueError, r"momentum=0\.9 is SGD's"),
        ({"colour": "red"}, ValueError, r"unknown recipe settings \['colour'\]"),
        ({"schedule": "cosine"}, ValueError, r"learning_rate_decay=0\.98 is the step schedule's"),
        ({"hidden_size": 0, "backend": "cupy"}, ValueError, "hidden_size must be a positive"),
    ],
)
def test_a_run_refuses_bad_settings_before_reading_any_data(tmp_path, overrides, error, message):
    missing = tmp_path / "no-data-here"  # reading it would fail: the settings fail first
    with pytest.raises(error, match=message):
        run("lab", data_dir=missing, **overrides)
    assert not missing.exists()


def test_data_of_another_preprocessing_is_refused_before_the_network_is_built(fast_data):
    """No network is built (built without a seed, it would draw from NumPy's global
    state): the mismatch is found first, by the plan or by run_plan."""
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    with pytest.raises(ValueError, match="data was prepared with 'scale_and_center', the recipe"):
        plan_run("lab", data=fast_data, seed=None, num_iters=5)
    with pytest.raises(ValueError, match="data was prepared with 'scale_and_center', the recipe"):
        run("lab", data=fast_data, seed=None, num_iters=5)
    plan = plan_run("lab", seed=None, num_iters=5)  # planned without the data
    with pytest.raises(ValueError, match=r"prepare it with prepare_data\('subtract_mean_image'\)"):
        run_plan(plan, data=fast_data)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_the_plan_is_the_settings_a_run_records(fast_data):
    plan = plan_run("fast", num_iters=5, seed=3, data=fast_data)
    result = run("fast", num_iters=5, seed=3, data=fast_data)
    recorded = dict(result.net.last_training["settings"])
    assert recorded.pop("num_train") == fast_data.X_train.shape[0]
    assert recorded == plan.settings.to_dict()
    assert json.loads(json.dumps(recorded)) == recorded  # plain data
