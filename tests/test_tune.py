"""``xpnet tune``: Optuna and Dask for real, on small searches of a subset of MNIST.

Each search trains a few hundred iterations per trial on 5,000 images. Clusters are
real: a LocalCluster of worker processes, or ``dask scheduler`` and ``dask worker``
processes started here on localhost and stopped at the end.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="xpnet tune needs pip install optuna distributed")
pytest.importorskip("distributed", reason="xpnet tune needs pip install optuna distributed")

from xpnet import TwoLayerNet  # noqa: E402
from xpnet.pipeline import prepare_data, recipe_with, run  # noqa: E402
from xpnet.tune import Choices, Range, tune  # noqa: E402
from xpnet.tune._study import open_storage, storage_spec  # noqa: E402

pytestmark = [pytest.mark.tune, pytest.mark.mnist]

# A small search: the fast recipe, hidden 16 to 64, 100 to 300 iterations, 5,000 images.
SMALL = {
    "recipe": "fast",
    "dtype": "float32",
    "train_size": 5000,
    "space": {
        "hidden_size": Range(16, 64, log=True, integer=True),
        "num_iters": Range(100, 300, integer=True),
        "batch_size": Choices((64, 128)),
    },
}
SMALL_ARGS = [
    "--recipe", "fast", "--dtype", "float32", "--train-size", "5000",
    "--hidden-size", "16", "64", "--num-iters", "100", "300", "--batch-size", "64", "128",
]  # fmt: skip


def xpnet(*args, **kwargs):
    """Run ``python -m xpnet.cli`` as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "xpnet.cli", *args], capture_output=True, text=True,
        check=False, **kwargs,
    )  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` has used (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_trials(directory: Path) -> list[dict[str, str]]:
    with open(directory / "trials.csv") as f:
        return list(csv.DictReader(f))


def finished(rows):
    return [r for r in rows if r["state"] in ("COMPLETE", "PRUNED", "FAIL")]


def test_a_local_search_finds_settings_better_than_its_worst(tmp_path, mnist_dir, capfd):
    result = tune(trials=6, workers=2, data_dir=mnist_dir, output_dir=tmp_path, **SMALL)
    assert "A new study created" not in capfd.readouterr().err  # Optuna's INFO is off
    # Printing the result shows what was found, not every trial's or the run's history.
    assert f"best_value={result.best_value!r}" in repr(result)
    assert len(repr(result)) < 2000
    values = [r["value"] for r in result.trials if r["state"] == "COMPLETE"]
    assert len(result.trials) == 6
    assert result.best_value == max(values) > min(values)
    assert {r["worker"] for r in result.trials} == {"0", "1"}  # both workers trained
    assert result.command.startswith("xpnet train --recipe fast --batch-size ")
    assert result.best_run is not None
    assert result.best_run.val_acc == pytest.approx(result.best_value, abs=2e-3)
    assert 0.5 < result.best_run.test_acc <= 1
    names = {p.name for p in result.written}
    assert {"trials.csv", "trials.png", "hyperparameters.png", "model.npz"} <= names
    assert len(read_trials(tmp_path)) == 6


@pytest.fixture
def dask_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on localhost; their address."""
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    assert dask, "the dask command comes with dask[distributed]"
    scheduler_file = tmp_path / "scheduler.json"
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    for name in ("w1", "w2"):
        processes.append(
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--name",
                    name,
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
            )
        )
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    yield address, processes[1:], processes[0]
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_same_search_runs_on_a_dask_scheduler(dask_cluster, tmp_path, mnist_dir):
    address, _, _ = dask_cluster
    result = xpnet(
        "tune", "--trials", "4", "--scheduler", address, *SMALL_ARGS,
        "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path), "--no-retrain",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "best settings: xpnet train --recipe fast" in result.stdout
    assert "trials: 4 done" in result.stderr
    rows = read_trials(tmp_path)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    assert {r["worker"] for r in rows} <= {"w1", "w2"}


def every_running_trial_has_reported(storage_url):
    """Whether each running trial of the search's study has reported an epoch: its worker
    is mid-trial."""
    study = optuna.load_study(study_name="xpnet-tune", storage=storage_url)
    running = [t for t in study.trials if t.state.name == "RUNNING"]
    return bool(running) and all(t.intermediate_values for t in running)


def test_a_worker_killed_mid_trial_fails_its_trial_and_it_runs_again(dask_cluster, tmp_path,
                                                                     mnist_dir):  # fmt: skip
    from distributed import Client

    address, workers, _ = dask_cluster
    by_name = {"w1": workers[0], "w2": workers[1]}
    killed = []

    with Client(address, timeout=30) as observer:

        def kill_a_busy_worker(counts):
            if killed:
                return
            deadline = time.monotonic() + 60
            while not every_running_trial_has_reported(storage_spec(None, tmp_path)):
                assert time.monotonic() < deadline, "no trial reported an epoch in 60 s"
                time.sleep(0.2)
            info = observer.scheduler_info()["workers"]
            busy = [info[a]["name"] for a, keys in observer.processing().items() if keys]
            by_name[busy[0]].send_signal(signal.SIGKILL)  # mid-trial: it has reported
            killed.append(busy[0])

        # Learning rates that converge: the trial run again must finish as a trial does,
        # not diverge (a rate of 2.5, inside the default range, can).
        space = {**SMALL["space"], "num_iters": Range(400, 600, integer=True),
                 "learning_rate": Range(0.05, 0.5, log=True)}  # fmt: skip
        result = tune(
            **{**SMALL, "space": space}, trials=4, scheduler=address, data_dir=mnist_dir,
            output_dir=tmp_path, retrain=False, progress=kill_a_busy_worker,
        )  # fmt: skip
    assert killed
    assert by_name[killed[0]].poll() is not None  # really dead
    rows = read_trials(tmp_path)
    (lost,) = (r for r in rows if r["state"] == "RETRIED")  # failed, and run again
    assert lost["error"].startswith("its worker died mid-trial; run again as trial ")
    again = rows[int(lost["error"].rsplit(" ", 1)[1])]
    knobs = ("hidden_size", "num_iters", "batch_size")
    assert [again[k] for k in knobs] == [lost[k] for k in knobs]  # the same settings
    assert again["state"] == "COMPLETE"
    assert again["worker"] != killed[0]
    assert len(finished(rows)) == 4  # the failed one does not count
    assert "RUNNING" not in [r["state"] for r in result.trials]
    # It went on from the lost run's last checkpoint (it had reported an epoch), and ends
    # with the numbers of those settings trained without a loss.
    assert int(again["resumed_at"]) > 0
    assert all(row["resumed_at"] == "" for row in rows if row is not again)
    data = prepare_data("scale_and_center", data_dir=mnist_dir).first(SMALL["train_size"])
    recorded = ("number", "state", "value", "seconds", "worker", "error", "resumed_at")
    params = {name: int(value) if value.isdigit() else float(value)
              for name, value in again.items() if name not in recorded}  # fmt: skip
    never_lost = run("fast", dtype="float32", seed=0, data=data, threads=1, **params)
    assert float(again["value"]) == never_lost.val_acc
    study = optuna.load_study(study_name="xpnet-tune", storage=storage_spec(None, tmp_path))
    reported = study.trials[int(again["number"])].intermediate_values  # the epochs after
    assert reported  # the resumed point, each as the run never lost had it
    accuracies = never_lost.history["val_acc_history"]  # reported in the losses' float32
    assert reported == {epoch: float(np.float32(accuracies[epoch - 1])) for epoch in reported}


@pytest.fixture
def hidden_worker(tmp_path):
    """``dask scheduler`` and one ``dask worker`` that cannot see ``tmp_path``: started in
    a directory of its own and, where Linux lets a user make a mount namespace
    (``unshare``), with ``tmp_path`` covered by an empty file system, as on another machine.
    Yields the scheduler's address, the directory hidden and whether it is hidden."""
    import tempfile

    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    elsewhere = Path(tempfile.mkdtemp(prefix="xpnet-worker-"))
    scheduler_file = elsewhere / "scheduler.json"
    processes = [subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=elsewhere,
    )]  # fmt: skip
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    worker = [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--name", "far",
              "--no-dashboard", "--local-directory", str(elsewhere)]  # fmt: skip
    unshare = shutil.which("unshare")
    hidden = unshare is not None and subprocess.run(
        [unshare, "-Urm", "mount", "-t", "tmpfs", "none", str(tmp_path)], capture_output=True,
    ).returncode == 0  # fmt: skip
    if hidden:  # the worker's own mount namespace, tmp_path covered there (and only there)
        worker = [unshare, "-Urm", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"',
                  str(tmp_path), *worker]  # fmt: skip
    processes.append(subprocess.Popen(worker, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, cwd=elsewhere))  # fmt: skip
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(1, timeout=60)
        if hidden:  # what the worker sees there: nothing
            assert list(client.run(os.listdir, str(tmp_path)).values()) == [[]]
    yield address, hidden
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(elsewhere, ignore_errors=True)


def test_a_worker_that_cannot_see_the_study_reports_and_is_pruned(hidden_worker, tmp_path,
                                                                  mnist_dir):  # fmt: skip
    """The trials report their epochs through the scheduler: a worker on another machine
    needs no access to the study to be pruned."""
    import dataclasses

    from xpnet.recipes import FAST
    from xpnet.tune._space import distributions, identity, searched_space
    from xpnet.tune._study import open_study

    address, _ = hidden_worker
    hopeless = {"learning_rate": Range(1e-7, 1e-7), "hidden_size": Range(8, 8, integer=True),
                "num_iters": Range(200, 200, integer=True),
                "batch_size": Choices((100,))}  # fmt: skip
    space = searched_space(FAST, hopeless)
    settings = {"recipe": dataclasses.asdict(FAST), "dataset": "mnist", "backend": "numpy",
                "dtype": "float32", "train_size": 2000, "seed": 0}  # fmt: skip
    spec = storage_spec(None, tmp_path)
    study = open_study(open_storage(spec, create=True), spec, "xpnet-tune",
                       identity(space, settings), 0, space)  # fmt: skip
    for _ in range(5):  # five finished trials that learnt well, as the pruner's yardstick
        trial = study.ask(distributions(space))
        for step in range(1, 11):
            trial.report(0.9, step)
        study.tell(trial, 0.9)

    tune(trials=6, recipe="fast", dtype="float32", train_size=2000, space=hopeless,
         scheduler=address, data_dir=mnist_dir, output_dir=tmp_path, retrain=False)  # fmt: skip
    last = optuna.load_study(study_name="xpnet-tune", storage=open_storage(spec)).trials[-1]
    assert last.state.name == "PRUNED"
    assert last.user_attrs["worker"] == "far"
    assert sorted(last.intermediate_values) == [1, 2]  # reported twice, then pruned
    assert all(value < 0.5 for value in last.intermediate_values.values())


def test_ctrl_c_keeps_finished_trials_and_the_same_command_resumes(tmp_path, mnist_dir):
    command = [sys.executable, "-m", "xpnet.cli", "tune", "--trials", "8", "--workers", "2",
               *SMALL_ARGS, "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path),
               "--no-retrain"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    for line in process.stderr:  # wait for two finished trials, then press Ctrl-C
        if line.startswith("trials: 2 done"):
            os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole group
            break
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stdout
    assert "Traceback" not in stderr  # no worker's, no driver's
    assert all(line.startswith("trials: ") for line in stderr.splitlines()), stderr
    storage = open_storage(storage_spec(None, tmp_path))
    study = optuna.load_study(study_name="xpnet-tune", storage=storage)
    first = {t.number: t.params for t in study.trials if t.state.name == "COMPLETE"}
    assert 2 <= len(first) < 8
    assert all(t.state.name != "RUNNING" for t in study.trials)  # cancelled, not left running

    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="xpnet-tune", storage=storage)
    complete = {t.number: t.params for t in study.trials if t.state.name == "COMPLETE"}
    for number, params in first.items():
        assert complete[number] == params  # kept, not run again
    rows = read_trials(tmp_path)
    assert len(finished(rows)) == 8  # the rest, not a new eight
    assert sum(r["state"] == "CANCELLED" for r in rows) == len(rows) - 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
        (["--storage", "foo://bar"], "neither a file path nor a database URL"),
        (["--learning-rate", "1", "0.1"], "learning_rate: low 1 is above high 0.1"),
        (["--momentum", "0", "2"], "momentum: 2.0 is refused: --momentum must be in [0, 0.999]"),
        (["--recipe", "best", "--momentum", "0", "0.9"], "momentum=0.9 is SGD's"),
        (["--batch-size", "0"], "batch_size: 0 is refused: --batch-size must be a positive"),
        (
            ["--recipe", "fast", "--learning-rate-decay", "0.9", "1"],
            "learning_rate_decay is the step schedule's; the recipe's cosine schedule",
        ),
        (["--recipe", "best", "--learning-rate-decay", "0.95", "0.95"], "does not use it"),
        (["--recipe", "best", "--dropout", "0.5", "1.5"], "dropout: 1.5 is refused"),
        (["--trials", "0"], "--trials must be a positive integer"),
        (["--train-size", "1"], "--train-size must be at least 2, got 1"),
        (
            ["--together", "2", "--early-stopping"],
            "--together above 1 stops no trial early: leave --early-stopping and --restore-best "
            "off, or give --together 1",
        ),
        # Found in the main process, before a cluster, a study file or a trial:
        (["--device", "cuda:0"], "runs on the 'cpu' device only"),
        (["--backend", "cupy"], "needs an NVIDIA GPU"),
        (["--hidden-size", "1000000000", "1000000000"], "hidden_size=1000000000) needs"),
        (["--momentum", "-0.5", "0.5"], "momentum: -0.5 is refused"),
        (["--weight-decay", "1e-3", "1e-2"], "weight_decay: 0.001 is refused: weight_decay="),
        # The data, read before a cluster starts or the study is written:
        (["--train-size", "100000000"], "train_size 100,000,000 exceeds the 55,000 training"),
    ],
)
def test_bad_input_fails_fast_and_changes_nothing(tmp_path, mnist_dir, args, message):
    out = tmp_path / "out"
    start = time.monotonic()
    result = xpnet("tune", *args, "--data-dir", str(mnist_dir), "--output-dir", str(out))
    assert time.monotonic() - start < 30
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"backend": "nope"}, ValueError, "unknown backend 'nope'"),
        ({"dtype": "float16"}, ValueError, "dtype must be one of"),
        ({"space": {"hidden_size": Range(16, 64)}}, TypeError, "hidden_size takes whole numbers"),
        ({"space": {"batch_size": Choices((2.5,))}}, TypeError, "batch_size: 2.5 is refused"),
        ({"space": {"batch_size": Range(16, 64)}}, TypeError, "batch_size takes whole numbers"),
        ({"space": {"std": Range(1e-4, 1e-2)}}, ValueError, "unknown knob 'std'"),
        ({"train_size": 2.5}, TypeError, "train_size must be a positive integer"),
        ({"recipe": "nope"}, ValueError, "unknown recipe 'nope'"),
        ({"retrain": "no"}, TypeError, "retrain must be True or False"),
        ({"progress": 3}, TypeError, "progress must be a callable"),
        ({"study_name": 3}, TypeError, "study_name must be a string"),
        ({"connect_timeout": 0}, ValueError, "connect_timeout must be in"),
        ({"workers": 0}, ValueError, "workers must be a positive integer"),
        ({"workers": True}, TypeError, "workers must be a positive integer"),
        ({"together": 0}, ValueError, "together must be a positive integer"),
        (
            {"together": 2, "recipe": recipe_with("fast", early_stopping=True)},
            ValueError,
            "together above 1 stops no trial early: leave early_stopping and restore_best off, "
            "or give together=1",
        ),
        (
            {"together": 4096, "space": {"hidden_size": Range(16, 4096, integer=True)}},
            ValueError,
            r"4096 networks of hidden_size=4096 trained together, batch_size=\d+ \(fewer "
            r"trained together need less\) needs",
        ),
    ],
)
def test_a_refused_search_from_python_starts_and_writes_nothing(
    tmp_path, mnist_dir, settings, error, message
):
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        tune(**{"trials": 2, "workers": 1, "data_dir": mnist_dir, "output_dir": out, **settings})
    assert not out.exists()


@pytest.mark.backend("jax")
def test_jax_float64_trials_complete_on_the_workers(tmp_path, mnist_dir):
    """64-bit mode is set up in each worker as in the main process, from the settings."""
    result = xpnet(
        "tune", "--backend", "jax", "--dtype", "float64", "--trials", "2", "--workers", "1",
        "--recipe", "fast", "--train-size", "2000", "--hidden-size", "16", "32",
        "--num-iters", "40", "60", "--batch-size", "64", "--no-retrain",
        "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_trials(tmp_path)
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"], rows
    assert all(0.5 < float(r["value"]) <= 1 for r in rows)


def test_numpy_integers_are_accepted_and_failed_trials_say_why(tmp_path, mnist_dir):
    """A search whose every trial diverges ends with the reason, and trials.csv has it."""
    import numpy as np

    space = {
        "learning_rate": Range(1e8, 1e9, log=True),
        "num_iters": Range(20, 20, integer=True),
        "hidden_size": Range(16, 16, integer=True),
    }
    with pytest.raises(ValueError, match="trials failed with: TrainingDivergedError") as info:
        tune(trials=np.int64(2), workers=1, data_dir=mnist_dir, output_dir=tmp_path,
             recipe="lab", train_size=np.int64(1000), retrain=False, space=space)  # fmt: skip
    assert "trials.csv" in str(info.value)
    rows = read_trials(tmp_path)
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]
    assert all("training diverged" in r["error"] for r in rows)


@pytest.mark.parametrize("taken", ["trials.csv", "best/model.npz"])
def test_a_fifo_where_the_search_writes_is_refused_before_any_trial(tmp_path, mnist_dir, taken):
    (tmp_path / "model.npz").mkdir()  # a run's file name, which the search does not write
    (tmp_path / taken).parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / taken)
    with pytest.raises(OSError, match=f"{tmp_path / taken}: it is a FIFO"):
        tune(trials=1, workers=1, data_dir=mnist_dir, output_dir=tmp_path, **SMALL)
    assert (tmp_path / taken).is_fifo()
    assert not (tmp_path / "study.db").exists()  # refused before the study was written


def test_a_file_that_is_not_a_study_is_refused_unchanged(tmp_path, mnist_dir):
    notes = tmp_path / "notes.log"
    notes.write_text("not a study\n")
    result = xpnet("tune", "--storage", str(notes), "--workers", "1", "--data-dir",
                   str(mnist_dir), "--output-dir", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 1
    assert "is not a study storage" in result.stderr
    assert notes.read_text() == "not a study\n"


def test_a_missing_data_directory_is_refused_before_anything_starts(tmp_path):
    out, missing = tmp_path / "out", tmp_path / "no-data-here"
    result = xpnet("tune", "--data-dir", str(missing), "--output-dir", str(out))
    assert result.returncode == 1
    assert f"the mnist data directory {missing} (from --data-dir) does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()  # no study.db, no study.log
    assert not missing.exists()


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (SMALL_ARGS[:-6], "batch_size: one of 64, 128 in the study, one of 64, 128, 256 now"),
        # The seed seeds every trial: the study's trials and its best settings' command
        # (--seed 0) are of the seed it was made with.
        ([*SMALL_ARGS, "--seed", "1"], "seed: 0 in the study, 1 now"),
    ],
    ids=["another space", "another seed"],
)
def test_a_study_of_another_search_is_not_resumed(tmp_path, mnist_dir, changed, named):
    tune(trials=1, workers=1, data_dir=mnist_dir, output_dir=tmp_path, retrain=False, **SMALL)
    before = (tmp_path / "study.db").read_bytes()
    result = xpnet("tune", "--trials", "2", "--workers", "1", *changed,
                   "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert "searched another space or settings (" in result.stderr
    assert named in result.stderr
    assert "give the same options to resume it" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (tmp_path / "study.db").read_bytes() == before


def test_a_recipe_object_and_numpy_bounds_are_searched_and_resumed(tmp_path, mnist_dir):
    """A Recipe (not a name) and NumPy numbers in the ranges search as names and Python
    numbers do; the best settings' command gives the recipe's own fields."""
    import dataclasses

    import numpy as np

    from xpnet.cli import _parser
    from xpnet.recipes import FAST

    recipe = dataclasses.replace(FAST, init="gaussian", std=0.01, shuffle=False)
    space = {
        "hidden_size": Range(np.int64(16), np.int64(32), log=True, integer=True),
        "num_iters": Range(np.int64(40), np.int64(60), integer=True),
        "learning_rate": Range(np.float32(0.05), np.float64(0.2), log=True),
        "batch_size": Choices((np.int64(64), np.int64(128))),
    }
    search = {
        "recipe": recipe,
        "space": space,
        "dtype": "float32",
        "train_size": 2000,
        "workers": 1,
        "data_dir": mnist_dir,
        "output_dir": tmp_path,
        "retrain": False,
    }
    result = tune(trials=2, **search)
    assert [row["state"] for row in result.trials] == ["COMPLETE", "COMPLETE"]
    assert result.command.startswith("xpnet train --recipe fast --batch-size ")
    args = _parser().parse_args(result.command.split()[1:])
    assert (args.recipe, args.init, args.std, args.shuffle, args.seed) == (
        "fast",
        "gaussian",
        0.01,
        False,
        0,
    )
    assert args.hidden_size == result.best_params["hidden_size"]
    again = tune(trials=2, **search)  # the same search: resumed, nothing left to run
    assert [row["number"] for row in again.trials] == [0, 1]


def test_the_default_search_turns_momentum_only_for_sgd():
    from xpnet.recipes import BEST, LAB
    from xpnet.tune import default_space

    assert "momentum" in default_space(LAB)
    assert "momentum" not in default_space(BEST)  # AdamW keeps its own moments


def test_adamw_searches_its_weight_decay_and_reg_only_where_the_recipe_has_one():
    from dataclasses import replace

    from xpnet.recipes import BEST, LAB
    from xpnet.tune import default_space

    assert default_space(BEST)["weight_decay"] == Range(0.001, 0.1, log=True)
    assert "reg" not in default_space(BEST)  # best has no L2 term
    assert "reg" in default_space(replace(BEST, reg=1e-4))
    assert "weight_decay" not in default_space(LAB)  # SGD has none


def test_dropout_is_searched_around_a_recipe_that_has_it():
    from xpnet.recipes import BEST, BEST_AUGMENTED, LAB
    from xpnet.tune import default_space

    assert default_space(BEST)["dropout"] == Range(0.3, 0.7)
    assert default_space(BEST_AUGMENTED)["dropout"] == Range(0.1, 0.5)
    assert "dropout" not in default_space(LAB)  # the lab's network has none


def test_a_reg_range_for_adamw_searches_its_l2_term_beside_the_weight_decay():
    from xpnet.recipes import BEST
    from xpnet.tune._space import searched_space

    searched = searched_space(BEST, {"reg": Range(1e-5, 1e-3, log=True)})
    assert searched["reg"] == Range(1e-5, 1e-3, log=True)
    assert searched["weight_decay"] == Range(0.001, 0.1, log=True)  # the default's, kept


def test_the_decay_is_searched_only_for_the_step_schedule():
    from xpnet.recipes import BEST, FAST, LAB
    from xpnet.tune import default_space

    assert "learning_rate_decay" in default_space(LAB)
    for cosine in (FAST, BEST):
        assert "learning_rate_decay" not in default_space(cosine)


def test_a_scheduler_that_accepts_and_never_answers_is_given_up_in_time(tmp_path, mnist_dir):
    out = tmp_path / "out"
    with socket.socket() as server:  # listening: the kernel accepts, nobody ever answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        result = xpnet("tune", "--scheduler", address, "--data-dir", str(mnist_dir),
                       "--output-dir", str(out), timeout=120)  # fmt: skip
        took = time.monotonic() - start
    assert result.returncode == 1, result.stderr
    assert took < 30  # the 10 s connect timeout, and the start of Python
    assert f"cannot reach the Dask scheduler {address} within 10 s" in result.stderr
    assert "accepted the connection but did not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def kill_every_worker_once_busy(killed):
    """A progress callback: SIGKILL every worker process of the search's cluster while
    trials run there (their nannies start new ones)."""
    from distributed import default_client

    def callback(counts):
        if killed or "starting" not in counts:
            return
        client = default_client()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(client.processing().values()):
            time.sleep(0.1)
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    return callback


def test_every_worker_killed_mid_trial_costs_no_trial(tmp_path, mnist_dir):
    killed = []
    result = tune(trials=3, workers=2, data_dir=mnist_dir, output_dir=tmp_path, retrain=False,
                  progress=kill_every_worker_once_busy(killed), **SMALL)  # fmt: skip
    assert len(killed) == 2
    rows = read_trials(tmp_path)
    # The two lost with their workers failed and ran again (not counted), then one more.
    states = [r["state"] for r in rows]
    assert states == ["RETRIED"] * 2 + ["COMPLETE"] * 3, [(r["state"], r["error"]) for r in rows]
    knobs = ("hidden_size", "num_iters", "batch_size")
    for lost in rows[:2]:
        again = rows[int(lost["error"].rsplit(" ", 1)[1])]
        assert [again[k] for k in knobs] == [lost[k] for k in knobs]
    assert result.best_value > 0.5


def test_a_task_that_raised_is_told_from_one_the_cluster_cancelled():
    """A trial's task that raised on its worker ran and failed on its own (it is failed, not
    run again); one the cluster cancelled was lost, and says why."""
    import operator

    from distributed import Client, wait

    from xpnet.tune._cluster import lost_to_cluster

    with Client(processes=False, n_workers=1, threads_per_worker=1,
                dashboard_address=None) as client:  # fmt: skip
        raised = client.submit(operator.truediv, 1, 0, pure=False)
        cancelled = client.submit(time.sleep, 5, pure=False)
        wait([raised])
        cancelled.cancel(reason="scheduler-connection-lost")  # as a lost scheduler's are
        assert cancelled.status == "cancelled"
        assert lost_to_cluster(raised) is None
        assert lost_to_cluster(cancelled) == "scheduler-connection-lost"


def test_a_task_whose_result_is_lost_before_it_is_gathered_was_lost_not_failed():
    """A task that finished on a worker which then died with its result (and the data it
    needed, so it cannot run again) was lost with the cluster: its trials run again."""
    from distributed import Client, LocalCluster, wait

    from xpnet.tune._dispatch import _ending

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        data = client.scatter([{"state": "complete", "value": 0.5}], broadcast=True)
        task = client.submit(list, data, pure=False)
        wait([task])
        for pid in client.run(os.getpid).values():
            os.kill(pid, signal.SIGKILL)
        ending = _ending(task, 1)
    assert isinstance(ending, str), ending
    assert "lost" in ending


def test_a_lost_scheduler_stops_in_one_line_and_costs_no_trial(dask_cluster, tmp_path,
                                                               mnist_dir):  # fmt: skip
    address, _, scheduler = dask_cluster
    command = [sys.executable, "-m", "xpnet.cli", "tune", "--trials", "4", "--scheduler",
               address, *SMALL_ARGS, "--data-dir", str(mnist_dir), "--output-dir",
               str(tmp_path), "--no-retrain"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith(
        "searching recipe fast on mnist with numpy float32: 4 trials, 2 at a time"
    )
    scheduler.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "the Dask cluster was lost (the scheduler went away" in stderr
    assert "run the same command again to resume" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    study = optuna.load_study(study_name="xpnet-tune",
                              storage=open_storage(storage_spec(None, tmp_path)))  # fmt: skip
    lost = [t for t in study.trials if t.state.name == "FAIL"]
    assert lost  # the trials it took: cancelled, so that the same command runs them again
    assert all(t.user_attrs.get("cancelled") for t in lost)
    assert all(t.state.name != "RUNNING" for t in study.trials)


def test_ctrl_c_in_the_retraining_saves_it_and_a_rerun_does_only_what_is_left(tmp_path, mnist_dir):
    command = [sys.executable, "-m", "xpnet.cli", "tune", "--trials", "1", "--workers", "1",
               *SMALL_ARGS, "--num-iters", "10000", "10000", "--data-dir", str(mnist_dir),
               "--output-dir", str(tmp_path)]  # fmt: skip
    with socket.socket() as dashboard:  # Dask's default dashboard port, taken
        dashboard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # already taken by another program: as good
            dashboard.bind(("0.0.0.0", 8787))
            dashboard.listen(1)
        searched = subprocess.run([*command, "--no-retrain"], capture_output=True, text=True,
                                  check=False)  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.startswith(
        "searching recipe fast on mnist with numpy float32: 1 trial, 1 at a time, on"
    )
    assert "8787" not in searched.stderr  # the local cluster's dashboard takes a free port

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    first = process.stdout.readline()
    assert first == "retraining the best settings (trial 0)\n", first  # no search, no Dask
    # Ctrl-C once the training runs: 0.75 s of its CPU time after the line, however busy
    # the machine (10,000 steps take a few).
    start, deadline = cpu_seconds(process.pid), time.monotonic() + 120
    while cpu_seconds(process.pid) < start + 0.75 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted while retraining the best settings" in stdout
    assert "run the same command again to retrain" in stdout
    assert (tmp_path / "best" / "model.npz").is_file()
    assert "Traceback" not in stderr

    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "searching" not in again.stdout
    assert "nothing left to run: the study already holds 1 finished trial\n" in again.stdout
    assert "best settings retrained: validation 0." in again.stdout

    once_more = subprocess.run(command, capture_output=True, text=True, check=False)
    assert once_more.returncode == 0, once_more.stderr
    assert "retraining the best settings" not in once_more.stdout  # best/ already holds it
    assert "best settings retrained before, in " in once_more.stdout


def test_two_searches_of_one_study_at_once_end_with_the_trials_asked_for(tmp_path, mnist_dir):
    command = [sys.executable, "-m", "xpnet.cli", "tune", "--trials", "4", "--workers", "1",
               *SMALL_ARGS, "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path),
               "--no-retrain"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout.readline().startswith(
        "searching recipe fast on mnist with numpy float32: 4 trials, 1 at a time"
    )
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for process in (first, second):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    rows = read_trials(tmp_path)
    assert len(finished(rows)) == 4, rows
    assert "RUNNING" not in {r["state"] for r in rows}


def test_trials_a_killed_search_left_running_run_again_and_are_shown(tmp_path, mnist_dir):
    command = [sys.executable, "-m", "xpnet.cli", "tune", "--trials", "3", "--workers", "2",
               *SMALL_ARGS, "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path),
               "--no-retrain"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, start_new_session=True)  # fmt: skip
    assert process.stdout.readline().startswith(
        "searching recipe fast on mnist with numpy float32: 3 trials, 2 at a time"
    )
    os.killpg(process.pid, signal.SIGKILL)  # no cleanup at all: its trials stay RUNNING
    process.wait(timeout=30)
    storage = open_storage(storage_spec(None, tmp_path))
    left = optuna.load_study(study_name="xpnet-tune", storage=storage).trials
    assert [t.state.name for t in left] == ["RUNNING", "RUNNING"]

    # They count as another search's until their heartbeats are 20 s old; then they fail
    # and run again here, with their settings.
    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert "the study holds 5 trials: 3 finished, 0 pruned, 0 failed, 0 cancelled, 2 retried" \
        in again.stdout  # fmt: skip
    rows = read_trials(tmp_path)
    assert [r["state"] for r in rows[:2]] == ["RETRIED", "RETRIED"]
    assert all("its search stopped (no heartbeat)" in r["error"] for r in rows[:2])
    assert len(finished(rows)) == 3


@pytest.mark.parametrize("recipe", ["fast", "lab-like"])
def test_the_best_trials_command_plans_what_the_trial_trained(recipe):
    """The ``xpnet train`` command, parsed by xpnet's own parser, gives the trial's recipe
    and settings (floats to the last bit) and its training images."""
    from xpnet.cli import _parser
    from xpnet.cli._train import plan_of
    from xpnet.pipeline import plan_run, recipe_with
    from xpnet.recipes import RECIPES
    from xpnet.tune import train_command

    start = recipe_with(RECIPES["lab"], learning_rate_decay=0.9) if recipe == "lab-like" else recipe
    params = {"learning_rate": 0.0012345678901234567, "hidden_size": 37, "batch_size": 64,
              "reg": 3.3333333333333335e-05}  # fmt: skip
    trial = plan_run(start, dtype="float32", seed=3, enable_float64=False).replace(**params)
    command = train_command(start, params, "mnist", "numpy", "float32", 3, train_size=2000)
    args = _parser().parse_args(command.split()[1:])
    planned = plan_of(args)
    assert planned.recipe == trial.recipe
    # xpnet train turns JAX's 64-bit switch on for any dtype; float32 never reads it
    compute = dataclasses.replace(planned.settings.compute, enable_float64=False)
    assert dataclasses.replace(planned.settings, compute=compute) == trial.settings
    assert args.train_size == 2000
    assert float(command.split("--learning-rate ")[1].split()[0]) == params["learning_rate"]


def test_a_search_says_its_budget_and_time_left_and_its_command_trains_the_best_trial(
    tmp_path, mnist_dir
):
    searched = xpnet("tune", "--trials", "3", "--workers", "2", *SMALL_ARGS, "--train-size",
                     "2000", "--data-dir", str(mnist_dir), "--output-dir", str(tmp_path / "s"),
                     "--no-retrain")  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.startswith(
        "searching recipe fast on mnist with numpy float32: 3 trials, 2 at a time, on a local "
        "Dask cluster;"
    )
    status = [line for line in searched.stderr.splitlines() if line.startswith("trials: ")]
    assert len(status) == 3, searched.stderr  # a line per trial, stderr being no terminal
    assert re.search(r"; about \d+ (s|min)", status[0]), status  # after the first trial
    assert "left" not in status[-1]  # none is running: nothing is left
    command = re.search(r"^best settings: (xpnet train .*)$", searched.stdout, re.M).group(1)
    assert "--train-size 2000" in command
    best = max(finished(read_trials(tmp_path / "s")), key=lambda row: float(row["value"] or 0))
    trained = xpnet(*command.split()[1:], "--data-dir", str(mnist_dir), "--output-dir",
                    str(tmp_path / "t"))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "(2,000 images)" in trained.stdout
    assert f"validation accuracy: {float(best['value']):.4f}" in trained.stdout


def test_early_stopping_stops_every_trial_and_the_retraining(tmp_path, mnist_dir):
    """--early-stopping, --patience and --restore-best fix the rule for every trial and
    the retraining; the best settings' command carries them."""
    result = xpnet(
        "tune", "--trials", "2", "--workers", "2", *SMALL_ARGS[:-9], "--hidden-size", "32", "32",
        "--num-iters", "3000", "3000", "--batch-size", "128", "--early-stopping",
        "--patience", "1", "--restore-best", "--data-dir", str(mnist_dir),
        "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (command,) = [line for line in result.stdout.splitlines() if "xpnet train" in line]
    for option in (" --early-stopping ", " --patience 1 ", " --restore-best "):
        assert option in command + " "
    study = optuna.load_study(study_name="xpnet-tune", storage=storage_spec(None, tmp_path))
    for trial in study.trials:  # 3,000 iterations are 76 epochs: each trial stopped long before
        assert trial.state.name == "COMPLETE"
        assert max(trial.intermediate_values) < 76
    record = TwoLayerNet.load(tmp_path / "best" / "model.npz").last_training
    assert 0 < record["stopped_epoch"] < 76
    assert record["kept_epoch"] == record["stopped_epoch"] - 1


def test_trials_trained_together_report_alone_and_equal_their_runs_alone(tmp_path, mnist_dir):
    """``--together 3``: each task asks for three trials and trains them in one program;
    each reports its own epochs, and ends as the same settings trained alone, or is
    pruned alone (the last task's, once the pruner has five finished trials to compare)."""
    done = xpnet("tune", "--trials", "12", "--together", "3", "--workers", "1", *SMALL_ARGS,
                 "--dtype", "float64", "--data-dir", str(mnist_dir), "--output-dir",
                 str(tmp_path), "--no-retrain")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "12 trials, 3 at a time" in done.stdout
    rows = read_trials(tmp_path)
    assert len(finished(rows)) == 12
    # four tasks of three trials: each task's trials end together, and say so
    assert sorted(Counter(r["seconds"] for r in rows).values()) == [3, 3, 3, 3]
    study = optuna.load_study(study_name="xpnet-tune", storage=storage_spec(None, tmp_path))
    data = prepare_data("scale_and_center", data_dir=mnist_dir).first(SMALL["train_size"])
    recorded = ("number", "state", "value", "seconds", "worker", "error", "resumed_at")
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    pruned = [r for r in rows if r["state"] == "PRUNED"]
    assert complete, [r["state"] for r in rows]
    assert pruned, [r["state"] for r in rows]
    for row in complete + pruned:
        params = {name: int(value) if value.isdigit() else float(value)
                  for name, value in row.items() if name not in recorded}  # fmt: skip
        alone = run("fast", dtype="float64", seed=0, data=data, threads=1, **params)
        reported = study.trials[int(row["number"])].intermediate_values
        accuracies = alone.history["val_acc_history"]
        epochs = sorted(reported)
        assert [reported[e] for e in epochs] == accuracies[: len(epochs)]
        if row["state"] == "COMPLETE":
            assert float(row["value"]) == alone.val_acc
            assert epochs == list(range(1, len(accuracies) + 1))
        else:  # stopped at the epoch the pruner judged, its own (its last, at the latest)
            assert epochs == list(range(1, len(epochs) + 1))
            assert len(epochs) <= len(accuracies)
