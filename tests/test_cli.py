"""The ``xpnet`` command, end to end on real MNIST, and its exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from test_plots import assert_shows_data

from xpnet import TwoLayerNet, plots
from xpnet.cli import main
from xpnet.data import DATASETS
from xpnet.pipeline import evaluate


def run(*args, env=None, cwd=None):
    """Run ``python -m xpnet.cli`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "xpnet.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, mnist_dir):
    """``xpnet train`` for 300 iterations into a temporary directory."""
    out = tmp_path_factory.mktemp("run")
    result = run(
        "train",
        "--num-iters",
        "300",
        "--hidden-size",
        "50",
        "--data-dir",
        str(mnist_dir),
        "--output-dir",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.mnist
def test_train_writes_every_file(short_run):
    out, result = short_run
    names = {"model.npz", "history.json", "loss_accuracy.png", "weights.png", "confusion.png",
             "checkpoint.npz"}  # fmt: skip
    assert {p.name for p in out.iterdir()} == names
    for name in names:
        assert f"{out / name}" in result.stdout
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss_history"]) == 300
    assert history["loss_history"][-1] < history["loss_history"][0]


@pytest.mark.mnist
def test_train_says_first_how_many_threads_run(short_run):
    _, result = short_run
    first = result.stdout.splitlines()[0]
    # 100 x 784 by 784 x 50 products: one thread, as for the lab's 784 x 175
    assert re.fullmatch(r"training 784-50-10 on mnist \(55,000 images\) with numpy on cpu "
                        r"float64, eager loop, 1 thread, recipe lab", first), first  # fmt: skip


@pytest.mark.mnist
def test_threads_given_to_train_and_evaluate_are_used(mnist_dir, tmp_path):
    result = run("train", "--num-iters", "2", "--hidden-size", "50", "--threads", "2",
                 "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ", 2 threads, recipe lab" in result.stdout.splitlines()[0]
    assert TwoLayerNet.load(tmp_path / "model.npz").last_training["threads"] == 2
    found = run("evaluate", str(tmp_path / "model.npz"), "--threads", "2", "--data-dir",
                str(mnist_dir))  # fmt: skip
    assert found.returncode == 0, found.stderr


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_thread_count_is_a_usage_error_that_names_it(command, value):
    result = run(command, *(["model.npz"] if command == "evaluate" else []), "--threads", value)
    assert result.returncode == 2
    assert "argument --threads" in result.stderr
    assert value in result.stderr


@pytest.mark.mnist
def test_train_prints_accuracies_and_a_progress_bar(short_run):
    _, result = short_run
    assert re.search(r"validation accuracy: 0\.\d{4}", result.stdout)
    assert re.search(r"test accuracy: +0\.\d{4}", result.stdout)
    # tqdm's bar: iterations, time, speed, and the last iteration's loss and learning rate
    assert re.search(
        r"300/300 \[[\d:]+<[\d:]+, +[\d.]+it/s, loss \d\.\d{4}, lr \d\.\d\de-\d\d\]", result.stderr
    )
    assert "iteration" not in result.stdout  # a bar, not a wall of prints


@pytest.mark.mnist
def test_pngs_show_the_runs_data(short_run, mnist_dir, tmp_path):
    """Each PNG is, pixel for pixel, the figure of the run's own numbers (its history, its
    first layer's weights, its test set's confusion matrix), and each panel of that figure
    changes when any of its lines, images or texts is hidden: empty axes fail."""
    out, _ = short_run
    found = evaluate(out / "model.npz", data_dir=mnist_dir)
    figures = {
        "loss_accuracy.png": plots.plot_history(json.loads((out / "history.json").read_text())),
        "weights.png": plots.plot_weights(found.net.params["W1"]),
        "confusion.png": plots.plot_confusion(found.confusion, DATASETS[found.dataset].class_names),
    }
    for name, figure in figures.items():
        assert_shows_data(figure, tmp_path / name)
        np.testing.assert_array_equal(
            matplotlib.image.imread(out / name), matplotlib.image.imread(tmp_path / name), name
        )


@pytest.mark.mnist
def test_saved_model_reloads_with_the_same_test_accuracy(short_run, mnist_dir, capsys):
    out, result = short_run
    printed = float(re.search(r"test accuracy: +(0\.\d+)", result.stdout).group(1))
    net = TwoLayerNet.load(out / "model.npz")
    assert net.metadata["results"]["test_acc"] == pytest.approx(printed, abs=5e-5)
    assert net.metadata["training"]["settings"]["num_iters"] == 300

    assert (
        main(
            [
                "evaluate",
                str(out / "model.npz"),
                "--data-dir",
                str(mnist_dir),
                "--output-dir",
                str(out / "eval"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert float(re.search(r"test accuracy: (0\.\d+)", text).group(1)) == printed
    counts = confusion_from(text)
    assert counts.shape == (10, 10)
    assert counts.sum() == 10000
    assert (out / "eval" / "confusion.png").is_file()


@pytest.mark.mnist
@pytest.mark.backend("torch")
def test_saved_model_evaluates_on_another_backend(short_run, mnist_dir, capsys):
    pytest.importorskip("torch")
    out, result = short_run
    printed = re.search(r"test accuracy: +(0\.\d+)", result.stdout).group(1)
    assert (
        main(
            [
                "evaluate",
                str(out / "model.npz"),
                "--backend",
                "torch",
                "--data-dir",
                str(mnist_dir),
                "--output-dir",
                str(out / "torch"),
            ]
        )
        == 0
    )
    assert f"test accuracy: {printed}" in capsys.readouterr().out


@pytest.mark.mnist
def test_data_command_verifies_and_shows_the_directory(mnist_dir, capsys):
    assert main(["data", "--data-dir", str(mnist_dir)]) == 0
    text = capsys.readouterr().out
    shown = text.splitlines()[0].removeprefix("mnist data directory: ")
    assert Path(shown).resolve() == mnist_dir.resolve()  # the same place, through symlinks too
    assert text.count("verified (SHA-256)") == 4


@pytest.mark.mnist
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--learning-rate", "-1", "--num-iters", "1"], "--learning-rate must be in"),
        (["train", "--backend", "cupy", "--device", "99"], "cupy"),
        (["evaluate", "missing.npz"], "missing.npz: file not found"),
    ],
    ids=["a bad value", "a backend this machine cannot run", "a missing model file"],
)
def test_expected_failures_exit_1_with_one_line(args, message, mnist_dir, tmp_path):
    result = run(*args, "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("xpnet: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def confusion_from(text):
    """The confusion matrix ``xpnet evaluate`` printed: the lines after its column header."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix")) + 2
    rows = [line.split()[-10:] for line in lines[start : start + 10]]
    return np.array([[int(n) for n in row] for row in rows])


OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}


@pytest.mark.mnist
def test_missing_test_files_exit_1_and_say_how_to_get_them(short_run, tmp_path):
    out, _ = short_run
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("evaluate", str(out / "model.npz"), "--data-dir", str(empty))
    assert result.returncode == 1
    assert f"test file t10k-images-idx3-ubyte.gz is missing from {empty}" in result.stderr
    assert "xpnet data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "data"])
def test_no_data_and_no_network_exits_1_and_says_where_the_files_belong(tmp_path, command):
    env = {**os.environ, **OFFLINE, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("XPNET_DATA", None)
    (tmp_path / "work").mkdir()
    result = run(command, env=env, cwd=tmp_path / "work")  # the default --output-dir
    assert result.returncode == 1
    message = result.stderr
    assert "could not download" in message
    assert f"belong in {tmp_path / 'cache' / 'xpnet' / 'mnist'}. Without a network" in message
    for hint in (
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "XPNET_DATA",
        "--data-dir",
    ):
        assert hint in message  # fmt: skip
    assert "downloads and verifies them" not in message  # no advice to run what just failed
    assert "Traceback" not in message
    assert len(message.strip().splitlines()) == 1
    assert not any((tmp_path / "cache").rglob("*.gz"))
    assert not list((tmp_path / "work").iterdir())  # no empty xpnet-output left behind


def test_a_data_directory_that_does_not_exist_is_not_created(tmp_path):
    env = {**os.environ, **OFFLINE, "XPNET_DATA": str(tmp_path / "nonexistent")}
    for command in (["train", "--output-dir", str(tmp_path / "out")], ["data"]):
        result = run(*command, env=env)
        assert result.returncode == 1
        assert "(from XPNET_DATA) does not exist" in result.stderr
        assert not (tmp_path / "nonexistent").exists()
    assert str(tmp_path / "nonexistent") in result.stdout  # `xpnet data` shows it anyway


@pytest.mark.parametrize("args", [["train", "--num-iters", "ten"], ["frobnicate"], []])
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert "usage: xpnet" in result.stderr


@pytest.mark.mnist
def test_ctrl_c_saves_the_model_and_exits_130(mnist_dir, tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xpnet.cli",
            "train",
            "--num-iters",
            "1000000",
            "--hidden-size",
            "20",
            "--data-dir",
            str(mnist_dir),
            "--output-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    while "loss " not in seen:  # the bar's first frame after a step: training has started
        char = process.stderr.read(1)
        assert char, seen  # xpnet ended before training
        seen += char
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"saved the model trained so far to {tmp_path / 'model.npz'}" in stdout
    assert "Traceback" not in stderr
    net = TwoLayerNet.load(tmp_path / "model.npz")
    assert net.metadata["interrupted"] is True
    assert 0 < net.last_training["iterations"] < 1000000


@pytest.mark.mnist
def test_fast_recipe_is_recorded_and_evaluated_with_its_preprocessing(mnist_dir, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--recipe",
                "fast",
                "--num-iters",
                "200",
                "--hidden-size",
                "32",
                "--data-dir",
                str(mnist_dir),
                "--output-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    printed = re.search(r"test accuracy: +(0\.\d+)", capsys.readouterr().out).group(1)
    net = TwoLayerNet.load(tmp_path / "model.npz")
    assert net.metadata["recipe"]["schedule"] == "cosine"
    assert net.metadata["recipe"]["hidden_size"] == 32  # the command line overrides the recipe
    assert net.metadata["preprocessing"]["name"] == "scale_and_center"
    assert net.preprocessing.name == "scale_and_center"
    assert main(["evaluate", str(tmp_path / "model.npz"), "--data-dir", str(mnist_dir)]) == 0
    assert f"test accuracy: {printed}" in capsys.readouterr().out


# Hostile input and first contact.


def quick(mnist_dir, out, *extra):
    """Arguments of a short training run."""
    return ("train", "--num-iters", "60", "--hidden-size", "10", "--data-dir", str(mnist_dir),
            "--output-dir", str(out), *extra)  # fmt: skip


@pytest.mark.mnist
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--hidden-size", "100000000"],
            r"a 784-100000000-10 network \(hidden_size=100000000\) needs",
        ),
        (
            ["--batch-size", "10000000000"],
            r"batch_size=10000000000 with hidden_size=10 needs [\d.,]+ [KMGT]iB",
        ),
        (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
        (["--hidden-size", "0"], "--hidden-size must be a positive integer, got 0"),
        (["--std", "1e200"], r"std=1e\+200 makes the network's scores overflow float64"),
        (["--optimizer", "adam", "--momentum", "0.9"], r"momentum=0\.9 is SGD's"),
        (["--weight-decay", "0.01"], r"weight_decay=0\.01 is AdamW's .* takes the L2 term reg"),
        (["--backend", "cupy"], "needs an NVIDIA GPU"),
        (["--device", "cuda:0"], "runs on the 'cpu' device only"),
        # A bad value is told before a GPU this machine lacks:
        (["--backend", "cupy", "--hidden-size", "0"], "--hidden-size must be a positive integer"),
        # The decay is the step schedule's: the cosine schedule would ignore it.
        (["--recipe", "fast", "--learning-rate-decay", "0.5"], r"learning_rate_decay=0\.5 is"),
        (["--schedule", "cosine"], r"learning_rate_decay=0\.98 is the step schedule's"),
    ],
)
def test_impossible_settings_exit_1_with_one_line_and_change_nothing(
    mnist_dir, tmp_path, args, message
):
    out = tmp_path / "out"
    result = run(*quick(mnist_dir, out), *args)
    assert result.returncode == 1, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""  # not even the "training ..." line
    assert not out.exists()  # checked before the output directory is made


@pytest.mark.mnist
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unusable_output_directory_is_found_before_training(mnist_dir, tmp_path, where):
    (tmp_path / "taken").write_text("")
    out = tmp_path / "taken" if where == "a file" else tmp_path / "taken" / "out"
    result = run(*quick(mnist_dir, out, "--num-iters", "1000000"))
    assert result.returncode == 1
    assert "output directory" in result.stderr
    assert "[" not in result.stderr  # no progress bar: no training started


@pytest.mark.mnist
@pytest.mark.parametrize("name", ["model.npz", "confusion.png"])
def test_a_runs_file_that_is_a_fifo_is_found_before_training(mnist_dir, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / name)
    result = run(*quick(mnist_dir, out, "--num-iters", "1000000"))
    assert result.returncode == 1, result.stderr
    assert f"{out / name}: it is a FIFO" in result.stderr, result.stderr
    assert "[" not in result.stderr  # no progress bar: no training started
    assert (out / name).is_fifo()
    assert sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.mnist
def test_train_replaces_another_run_only_with_overwrite(mnist_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()  # an empty directory is fine
    assert run(*quick(mnist_dir, out)).returncode == 0
    model = (out / "model.npz").read_bytes()
    again = run(*quick(mnist_dir, out, "--seed", "1", "--num-iters", "1000000"))
    assert again.returncode == 1
    assert again.stderr == (
        f"xpnet: error: output directory {out} holds another run's files (model.npz, "
        "history.json, loss_accuracy.png, weights.png, confusion.png, checkpoint.npz); give "
        "--overwrite to replace it, or choose another directory (or resume that run from its "
        "checkpoint)\n"
    )
    assert again.stdout == ""  # refused before any training
    assert (out / "model.npz").read_bytes() == model
    replaced = run(*quick(mnist_dir, out, "--seed", "1", "--overwrite"))
    assert replaced.returncode == 0, replaced.stderr
    assert TwoLayerNet.load(out / "model.npz").metadata["seed"] == 1


@pytest.mark.mnist
def test_a_closed_stdout_never_costs_the_model(mnist_dir, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "xpnet.cli", *quick(mnist_dir, tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("training")  # `| head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert "stdout was closed" in stderr
    assert "Traceback" not in stderr
    assert TwoLayerNet.load(tmp_path / "model.npz").last_training["iterations"] == 60


@pytest.mark.mnist
def test_a_stdout_closed_from_the_start_claims_no_files(mnist_dir, tmp_path):
    """Nothing read from stdout: the first line fails, before any training; the message
    does not claim results were written, and no output directory is left."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "xpnet.cli", *quick(mnist_dir, out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert "stdout was closed, so the command stopped at its next line of output" in stderr
    assert "results were written" not in stderr
    assert not out.exists()


@pytest.mark.mnist
def test_a_diverging_run_ends_with_one_clear_message(mnist_dir, tmp_path):
    result = run(*quick(mnist_dir, tmp_path, "--learning-rate", "1e6", "--num-iters", "300"))
    assert result.returncode == 1
    assert "training diverged at iteration" in result.stderr
    assert "Lower the learning rate" in result.stderr
    assert "Warning" not in result.stderr
    assert not re.search(r"\d{12}", result.stderr)  # no 190-digit losses


@pytest.mark.mnist
@pytest.mark.backend("jax")
def test_jax_trains_and_evaluates_in_float64_from_the_command_line(mnist_dir, tmp_path):
    pytest.importorskip("jax")
    trained = run(*quick(mnist_dir, tmp_path, "--backend", "jax"))
    assert trained.returncode == 0, trained.stderr
    assert "jax on" in trained.stdout
    assert "float64" in trained.stdout
    for dtype in ([], ["--dtype", "float32"]):
        found = run(
            "evaluate", str(tmp_path / "model.npz"), "--backend", "jax",
            "--data-dir", str(mnist_dir), *dtype,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert re.search(r"test accuracy: 0\.\d{4}", found.stdout)


def test_help_shows_defaults_and_the_output_directory(capsys):
    with pytest.raises(SystemExit):
        main(["train", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "where model.npz, history.json, the plots and checkpoint.npz go" in text
    assert "default: xpnet-output, or the --resume directory" in text
    assert "lab 175, fast 128" in text  # each hyperparameter shows the recipes' values


@pytest.mark.mnist
def test_a_fashion_mnist_model_is_not_evaluated_on_mnist(mnist_dir, fashion_mnist_dir, tmp_path):
    trained = run(*quick(fashion_mnist_dir, tmp_path, "--dataset", "fashion-mnist"))
    assert trained.returncode == 0, trained.stderr
    result = run("evaluate", str(tmp_path / "model.npz"), "--data-dir", str(mnist_dir))
    assert result.returncode == 1
    assert "is mnist's, not fashion-mnist's" in result.stderr


def test_help_never_shows_a_default_of_none(capsys):
    """Options without a value say in words what happens; -h never prints "default: None"."""
    for command in ("train", "evaluate", "data", "tune", "export"):
        with pytest.raises(SystemExit):
            main([command, "-h"])
        assert "default: None" not in capsys.readouterr().out


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.mnist
@pytest.mark.parametrize("asked", ["fashion-mnist", "mnist"])
def test_data_names_the_dataset_the_files_are_and_never_advises_deleting_them(mnist_dir, asked):
    """Genuine files of the other dataset are said to be that dataset's, not corrupt."""
    held = "mnist" if asked == "fashion-mnist" else "fashion-mnist"
    directory = mnist_dir if held == "mnist" else FASHION
    if not directory.is_dir():
        pytest.skip(f"no {held} files here (Debian's dataset-fashion-mnist puts them in {FASHION})")
    result = run("data", "--dataset", asked, "--data-dir", str(directory))
    assert result.returncode == 1
    assert result.stdout.count(f"{held}'s file, not {asked}'s") == 4
    assert "DOES NOT MATCH" not in result.stdout
    assert f"use --dataset {held}" in result.stderr
    assert "delete" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def report_from(text):
    """The classification report ``xpnet evaluate`` printed, as {class or average: numbers}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == REPORT_HEADER)
    end = next(i for i, line in enumerate(lines) if line.startswith("weighted avg"))
    report = {}
    for words in (line.split() for line in lines[start + 1 : end + 1] if line.strip()):
        numbers = 2 if words[0] == "accuracy" else 4
        report[" ".join(words[:-numbers])] = [float(word) for word in words[-numbers:]]
    return report


REPORT_HEADER = ["precision", "recall", "f1-score", "support"]


@pytest.mark.mnist
def test_evaluate_prints_a_classification_report_and_draws_the_misclassified(
    short_run, mnist_dir, tmp_path
):
    out, _ = short_run
    result = run("evaluate", str(out / "model.npz"), "--data-dir", str(mnist_dir),
                 "--output-dir", str(tmp_path / "eval"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = report_from(result.stdout)
    assert list(report) == [*map(str, range(10)), "accuracy", "macro avg", "weighted avg"]
    accuracy = float(re.search(r"test accuracy: (0\.\d+)", result.stdout).group(1))
    assert report["accuracy"] == [accuracy, 10_000]
    counts = confusion_from(result.stdout)  # the report agrees with the confusion matrix
    for c in range(10):
        precision, recall, f1, support = report[str(c)]
        assert support == counts[c].sum()
        assert recall == pytest.approx(counts[c, c] / counts[c].sum(), abs=5e-5)
        assert precision == pytest.approx(counts[c, c] / counts[:, c].sum(), abs=5e-5)
        assert f1 == pytest.approx(2 * counts[c, c] / (support + counts[:, c].sum()), abs=5e-5)
    picture = tmp_path / "eval" / "misclassified.png"
    assert f"wrote {tmp_path / 'eval' / 'confusion.png'}, {picture}" in result.stdout
    wrong = 10_000 - np.trace(counts)
    found = evaluate(out / "model.npz", data_dir=mnist_dir)
    assert int((found.labels != found.predicted).sum()) == wrong
    assert found.report() in result.stdout
    figure = plots.plot_misclassified(found.images, found.labels, found.predicted)
    first = np.flatnonzero(found.labels != found.predicted)[0]
    assert figure.axes[0].get_title() == (
        f"true {found.labels[first]}\nread {found.predicted[first]}"
    )
    assert (
        figure.texts[0].get_text() == f"Misclassified: {wrong:,} of 10,000 images (the first 100)"
    )
    assert_shows_data(figure, tmp_path / "again.png", panels=figure.axes[:1])
    assert (
        matplotlib.image.imread(picture).shape[:2]
        == matplotlib.image.imread(tmp_path / "again.png").shape[:2]
    )


@pytest.mark.mnist
def test_evaluate_without_matplotlib_reports_and_says_why_there_are_no_plots(
    short_run, mnist_dir, tmp_path
):
    out, _ = short_run
    code = ("import sys; sys.modules['matplotlib'] = None; from xpnet.cli import main; "
            "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code, "evaluate", str(out / "model.npz"), "--data-dir",
         str(mnist_dir), "--output-dir", str(tmp_path / "eval")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "weighted avg" in result.stdout
    assert result.stderr == (
        "no plots: plots need matplotlib; install it with: pip install matplotlib\n"
    )
    assert not (tmp_path / "eval").exists() or not list((tmp_path / "eval").iterdir())


@pytest.mark.mnist
def test_evaluate_replaces_another_directorys_files_only_with_overwrite(
    short_run, mnist_dir, tmp_path
):
    out, _ = short_run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "confusion.png").write_bytes(b"another run's")
    args = ("evaluate", str(out / "model.npz"), "--data-dir", str(mnist_dir), "--output-dir",
            str(elsewhere))  # fmt: skip
    refused = run(*args)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"xpnet: error: output directory {elsewhere} holds another run's files "
        "(confusion.png); give --overwrite to replace it, or choose another directory\n"
    )
    assert refused.stdout == ""  # before any work
    assert run(*args, "--overwrite").returncode == 0
    assert (elsewhere / "misclassified.png").is_file()
    # The model's own directory is where its plots belong: replaced without asking.
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(out / "model.npz", own / "model.npz")
    (own / "confusion.png").write_bytes(b"an earlier evaluation's")
    done = run("evaluate", str(own / "model.npz"), "--data-dir", str(mnist_dir))
    assert done.returncode == 0, done.stderr
    assert matplotlib.image.imread(own / "confusion.png").ndim == 3
    assert (own / "misclassified.png").is_file()


@pytest.mark.mnist
def test_evaluate_into_an_output_dir_that_is_a_file_says_so(short_run, mnist_dir, tmp_path):
    out, _ = short_run
    taken = tmp_path / "hostname"
    taken.write_text("a file\n")
    result = run("evaluate", str(out / "model.npz"), "--data-dir", str(mnist_dir),
                 "--output-dir", str(taken))  # fmt: skip
    assert result.returncode == 1
    assert f"output directory {taken} is a file; choose a directory" in result.stderr
    assert "test accuracy" not in result.stdout  # said before any work
    assert taken.read_text() == "a file\n"


@pytest.fixture
def read_only_later(tmp_path):
    """A directory on its own small tmpfs, and a function that remounts it read-only.

    Tests run as root, which ignores file modes; a read-only mount stops root too. Where
    mounting is not allowed (no CAP_SYS_ADMIN), the test is skipped and says so.
    """
    directory = tmp_path / "mounted"
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(directory)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to make read-only: {mounted.stderr.strip()}")

    def make_read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)

    yield directory, make_read_only
    subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.mark.mnist
def test_an_output_dir_gone_read_only_mid_train_keeps_the_accuracies(mnist_dir, read_only_later):
    out, make_read_only = read_only_later
    process = subprocess.Popen(
        [sys.executable, "-m", "xpnet.cli", *quick(mnist_dir, out, "--num-iters", "1500")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = process.stdout.readline()  # printed once the output directory was checked
    assert first.startswith("training "), first
    make_read_only()
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert re.search(r"validation accuracy: 0\.\d{4}", stdout)
    assert re.search(r"test accuracy: +0\.\d{4}", stdout)
    assert f"cannot write model.npz into {out}: Read-only file system" in stderr
    assert ".part" not in stderr
    assert not list(out.iterdir())


@pytest.mark.mnist
def test_evaluate_in_a_read_only_model_directory_prints_the_results_then_fails(
    short_run, mnist_dir, read_only_later
):
    out, _ = short_run
    directory, make_read_only = read_only_later
    shutil.copy(out / "model.npz", directory / "model.npz")
    make_read_only()
    result = run("evaluate", str(directory / "model.npz"), "--data-dir", str(mnist_dir))
    assert result.returncode == 1
    assert re.search(r"test accuracy: 0\.\d{4} on 10,000 mnist images", result.stdout)
    assert confusion_from(result.stdout).sum() == 10_000
    assert f"cannot write confusion.png into {directory}: Read-only file system" in result.stderr
    assert "the results above were measured" in result.stderr
    assert "--output-dir" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert [p.name for p in directory.iterdir()] == ["model.npz"]


@pytest.mark.mnist
def test_train_refuses_another_datasets_files_before_anything_is_written(mnist_dir, tmp_path):
    """XPNET_FASHION_DATA naming MNIST's files: refused, as evaluate and data refuse them,
    rather than a model of digits recorded as Fashion-MNIST."""
    env = {**os.environ, "XPNET_FASHION_DATA": str(mnist_dir)}
    out = tmp_path / "out"
    result = run("train", "--dataset", "fashion-mnist", "--num-iters", "5",
                 "--output-dir", str(out), env=env)  # fmt: skip
    assert result.returncode == 1
    assert "train-images-idx3-ubyte.gz is mnist's, not fashion-mnist's" in result.stderr
    assert "XPNET_FASHION_DATA" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    assert not out.exists()


#: ``xpnet`` under an address-space limit (``ulimit -v``) of MiB beyond what it maps once
#: its modules are loaded: ``python - MIB ARGS...``.
UNDER_A_LIMIT = """
import resource, sys
import xpnet.cli._train, xpnet.pipeline
from xpnet.cli import main
mapped = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
              if line.startswith("VmSize:"))
limit = mapped + int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.exit(main(sys.argv[2:]))
"""


def under_a_limit(mib, *args):
    return subprocess.run([sys.executable, "-c", UNDER_A_LIMIT, str(mib), *args],
                          capture_output=True, text=True, check=False)  # fmt: skip


@pytest.mark.mnist
def test_sizes_are_checked_against_the_memory_this_process_may_take(mnist_dir, tmp_path):
    """Under ``ulimit -v``, a network larger than what is left is refused before any
    work, naming the limit; the machine's total memory would have let it through."""
    result = under_a_limit(256, *quick(mnist_dir, tmp_path / "out", "--hidden-size", "100000"))
    assert result.returncode == 1, result.stderr
    assert "a 784-100000-10 network (hidden_size=100000) needs 605.8 MiB" in result.stderr
    assert "address-space limit, ulimit -v" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.mnist
def test_memory_that_runs_out_is_one_clear_line(mnist_dir, tmp_path):
    """An allocation no check foresaw (here, reading the images under a tight ``ulimit
    -v``) ends with a message, not a MemoryError's traceback."""
    result = under_a_limit(64, *quick(mnist_dir, tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("xpnet: error: out of memory")
    assert "address-space limit" in result.stderr
    assert "raise the limit" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_help_of_flags_shows_no_misleading_default(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: True)" not in text
    assert "skip retraining the best settings" in text


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_tune_refuses_a_worker_count_that_is_not_positive(workers, tmp_path):
    pytest.importorskip("distributed")
    result = run("tune", "--workers", workers, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"--workers: must be a positive integer, got {workers}" in result.stderr
    assert not (tmp_path / "out").exists()


# Epochs, weight decay and the help.


def history_of(out):
    return json.loads((out / "history.json").read_text())


@pytest.mark.mnist
def test_epochs_train_whole_epochs_of_the_training_set(mnist_dir, tmp_path):
    result = run("train", "--epochs", "2", "--batch-size", "5000", "--hidden-size", "10",
                 "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    history = history_of(tmp_path)
    assert len(history["loss_history"]) == 2 * (55_000 // 5000)
    assert len(history["val_acc_history"]) == 2  # an accuracy at the end of each epoch
    both = run(*quick(mnist_dir, tmp_path / "both", "--epochs", "2"))  # quick has --num-iters
    assert both.returncode == 2
    assert "argument --epochs: not allowed with argument --num-iters" in both.stderr
    assert not (tmp_path / "both").exists()


@pytest.mark.mnist
def test_reg_and_weight_decay_are_two_settings_on_the_command_line(mnist_dir, tmp_path):
    """--reg with the best recipe is an L2 term beside the recipe's weight decay, with no
    warning; --weight-decay replaces the decay."""
    args = ("--recipe", "best", "--num-iters", "5", "--hidden-size", "10",
            "--data-dir", str(mnist_dir))  # fmt: skip
    runs = {"l2": ("--reg", "0.02"), "decay": ("--weight-decay", "0.02")}
    for name, options in runs.items():
        result = run("train", *args, *options, "--output-dir", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr
    recorded = {
        name: tuple(TwoLayerNet.load(tmp_path / name / "model.npz").last_training["settings"][k]
                    for k in ("reg", "weight_decay"))
        for name in runs
    }  # fmt: skip
    assert recorded == {"l2": (0.02, 0.01), "decay": (0.0, 0.02)}


def help_text(*command, capsys, monkeypatch):
    """``xpnet COMMAND -h`` as one line (wide, so that no path is broken at a hyphen)."""
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main([*command, "-h"])
    return " ".join(capsys.readouterr().out.split())


def test_help_says_what_each_choice_means_and_where_the_data_is(capsys, monkeypatch):
    text = help_text("train", capsys=capsys, monkeypatch=monkeypatch)
    assert "lab 0.0001, fast He, best He" in text  # no "fast 0.0" under He initialisation
    assert "best 17160 (40 epochs)" in text
    assert "N * (55,000 training images // batch size) iterations" in text
    assert "AdamW's decoupled weight decay" in text
    assert "best 0.01" in text.split("--weight-decay")[-1]
    for default in ("the array library (default: numpy)", "the images (default: mnist)"):
        assert default in text
    for place in ("$XPNET_DATA", "$XPNET_FASHION_DATA", "/usr/share/datasets/fashion-mnist"):
        assert place in text
    data = help_text("data", capsys=capsys, monkeypatch=monkeypatch)
    assert "download the missing ones from the dataset's mirrors (which needs a network)" in data
    assert "$XPNET_FASHION_DATA" in data


def test_tune_help_shares_the_compute_and_data_options(capsys, monkeypatch):
    text = help_text("tune", capsys=capsys, monkeypatch=monkeypatch)
    assert "--weight-decay LOW HIGH the range of weight_decay (log scale)" in text
    assert "the array library (default: numpy)" in text
    assert "/usr/share/datasets/fashion-mnist" in text


def _long_run(mnist_dir, out, *extra):
    """A run of 2,000 steps on 10,000 images, a checkpoint every 2 epochs (100 steps)."""
    return ("train", "--train-size", "10000", "--epochs", "20", "--checkpoint-every", "2",
            "--data-dir", str(mnist_dir), "--output-dir", str(out), *extra)  # fmt: skip


@pytest.mark.mnist
def test_sigterm_then_resume_ends_as_the_run_never_stopped(mnist_dir, tmp_path):
    reference = run(*_long_run(mnist_dir, tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "run"
    command = [sys.executable, "-m", "xpnet.cli", *_long_run(mnist_dir, out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "checkpoint.npz").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert f"saved the model trained so far to {out / 'model.npz'}; its last checkpoint is " \
        f"{out / 'checkpoint.npz'}; go on with: xpnet train --resume {out}" in stdout  # fmt: skip
    resumed = run("train", "--resume", str(out), "--data-dir", str(mnist_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"; resuming at iteration [1-9][\d,]* of 2,000\n", resumed.stdout)
    assert resumed.stdout.split("\n")[1:3] == reference.stdout.split("\n")[1:3]  # accuracies
    ours, theirs = np.load(out / "model.npz"), np.load(tmp_path / "reference" / "model.npz")
    assert all(np.array_equal(ours[name], theirs[name]) for name in ("W1", "b1", "W2", "b2"))
    history = json.loads((out / "history.json").read_text())
    assert history == json.loads((tmp_path / "reference" / "history.json").read_text())


@pytest.mark.mnist
def test_resume_refuses_other_settings_and_a_directory_without_a_checkpoint(mnist_dir, tmp_path):
    assert run(*quick(mnist_dir, tmp_path, "--dtype", "float32")).returncode == 0
    other = run("train", "--resume", str(tmp_path), "--learning-rate", "0.5", "--data-dir",
                str(mnist_dir))  # fmt: skip
    assert other.returncode == 1
    assert other.stderr.startswith(f"xpnet: error: cannot resume from {tmp_path}/checkpoint.npz")
    assert "learning_rate 0.5 (the checkpoint's: 0.001)" in other.stderr
    assert other.stderr.count("\n") == 1
    typed = run("train", "--resume", str(tmp_path), "--dtype", "float64", "--data-dir",
                str(mnist_dir))  # fmt: skip
    assert typed.returncode == 1  # an option typed, even at its default, is the user's
    assert "'dtype': 'float64'} (the checkpoint's: {" in typed.stderr
    assert run("train", "--resume", str(tmp_path), "--num-iters", "90", "--data-dir",
               str(mnist_dir)).returncode == 0  # longer: fine  # fmt: skip
    assert TwoLayerNet.load(tmp_path / "model.npz").last_training["iterations"] == 90
    empty = run("train", "--resume", str(tmp_path / "nothing"), "--data-dir", str(mnist_dir))
    assert empty.returncode == 1
    missing = tmp_path / "nothing" / "checkpoint.npz"
    assert empty.stderr == f"xpnet: error: {missing}: file not found\n"
