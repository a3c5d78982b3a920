"""Checkpoints and resume: a run stopped at any step (by a callback that raises, Ctrl-C,
SIGTERM or SIGKILL) and resumed from its checkpoint ends bit for bit as the run that was
never stopped, on every backend and runner; a failed write keeps the previous checkpoint;
a resume that is not the checkpoint's run is refused with the differences named."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.augment import Augmentation
from xpnet.backend import to_numpy
from xpnet.errors import ModelFileError, TrainingInterrupted
from xpnet.training import CHECKPOINT_FILE, TrainSettings, fit, read_checkpoint

#: Every piece of a run's state a checkpoint must hold, in three runs: momentum, dropout and
#: shuffled epochs; distortions (their settings recorded, their noise counted by the step);
#: AdamW's moments and step count, early stopping and the best epoch kept.
SETUPS = {
    "sgd": {"momentum": 0.9, "dropout": 0.2, "shuffle": True, "num_iters": 200},
    "augmented": {
        "augment": Augmentation(
            rotation=10, shift=1, elastic_alpha=1.0, elastic_sigma=1.0, image_shape=(3, 4)
        ),
        "momentum": 0.9,
        "num_iters": 150,
    },
    "adamw": {
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "momentum": 0.0,
        "early_stopping": True,
        "patience": 3,
        "restore_best": True,
        "num_iters": 400,
    },
}


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12))
    y = (X[:, :3].sum(axis=1) > 0).astype(np.int64) + 2 * (X[:, 3] > 0.5)
    X_val = rng.standard_normal((60, 12))
    y_val = (X_val[:, :3].sum(axis=1) > 0).astype(np.int64) + 2 * (X_val[:, 3] > 0.5)
    return X, y, X_val, y_val


def _net(backend, seed=3):
    return TwoLayerNet(12, 16, 4, std=0.1, seed=seed, backend=backend)


def _train(net, progress=None, **settings):
    options = {"learning_rate": 0.05, "batch_size": 20, **settings}
    return net.train(*_data(), progress=progress, **options)


def _host(params):
    return {name: to_numpy(p) for name, p in params.items()}


def _assert_same_run(net, history, reference, reference_history):
    """Bit for bit: parameters, history, what the record says of the best epoch, and
    the network's generator where the run left it."""
    ours, theirs = _host(net.params), _host(reference.params)
    for name in theirs:
        assert np.array_equal(ours[name], theirs[name]), name
    assert history == reference_history
    for key in ("iterations", "stopped_epoch", "kept_epoch"):
        assert net.last_training.get(key) == reference.last_training.get(key), key
    if reference.rng is not None:
        assert net.rng.bit_generator.state == reference.rng.bit_generator.state


def _progress_steps(backend, setup):
    """The iterations after which the progress callback is called (every step eager, every
    chunk compiled): where a callback can stop the run."""
    seen = []
    _train(_net(backend), progress=lambda it, loss, rate: seen.append(it), **SETUPS[setup])
    return seen


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_a_run_stopped_by_a_callback_resumes_bit_for_bit(backend, setup, tmp_path):
    reference = _net(backend)
    expected = _train(reference, **SETUPS[setup])
    steps = _progress_steps(backend, setup)
    rng = np.random.default_rng(zlib.crc32(f"{backend.name} {setup}".encode()))
    for stop_at in [steps[0], *rng.choice(steps[1:-1], size=2, replace=False)]:
        checkpoint = tmp_path / f"at{stop_at}.npz"

        def progress(iteration, loss, rate, stop_at=stop_at):
            if iteration == stop_at:
                raise RuntimeError("stopped by the callback")

        stopped = _net(backend)
        with pytest.raises(RuntimeError, match="stopped by the callback"):
            _train(stopped, progress=progress, checkpoint=checkpoint, checkpoint_every=0,
                   **SETUPS[setup])  # fmt: skip
        assert read_checkpoint(checkpoint).iterations == stop_at + 1
        resumed = _net(backend)
        history = _train(resumed, resume=checkpoint, **SETUPS[setup])
        _assert_same_run(resumed, history, reference, expected)


def test_one_checkpoint_resumed_twice_gives_the_same_run_twice(backend, tmp_path):
    """Resuming copies the checkpoint's arrays: the run does not write into them."""
    checkpoint_file = tmp_path / "checkpoint.npz"
    _train(_net(backend), checkpoint=checkpoint_file, **dict(SETUPS["adamw"], num_iters=60))
    checkpoint = read_checkpoint(checkpoint_file)
    before = {name: values.copy() for name, values in checkpoint.optimizer.items()}
    runs = []
    for _ in range(2):
        net = _net(backend)
        runs.append((_train(net, resume=checkpoint, **SETUPS["adamw"]), _host(net.params)))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    assert all(np.array_equal(before[k], v) for k, v in checkpoint.optimizer.items())


def test_ctrl_c_writes_the_checkpoint_of_the_step_it_stopped_after(backend, tmp_path):
    reference = _net(backend)
    expected = _train(reference, **SETUPS["sgd"])
    stop_at = _progress_steps(backend, "sgd")[3]
    checkpoint = tmp_path / "checkpoint.npz"

    def progress(iteration, loss, rate):
        if iteration == stop_at:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C

    stopped = _net(backend)
    with pytest.raises(TrainingInterrupted) as raised:
        _train(stopped, progress=progress, checkpoint=checkpoint, **SETUPS["sgd"])
    assert raised.value.signal == signal.SIGINT
    assert raised.value.checkpoint == checkpoint
    assert raised.value.iterations == stop_at + 1 == read_checkpoint(checkpoint).iterations
    resumed = _net(backend)
    history = _train(resumed, resume=checkpoint, **SETUPS["sgd"])
    _assert_same_run(resumed, history, reference, expected)


def test_a_network_without_a_seed_resumes_with_the_lab_batches_it_drew(backend, tmp_path):
    """The lab's batches come from NumPy's global state before the first step: the
    checkpoint keeps them."""
    np.random.seed(0)
    reference = TwoLayerNet(12, 16, 4, std=0.1, backend=backend)
    expected = _train(reference, num_iters=120)
    np.random.seed(0)
    stopped = TwoLayerNet(12, 16, 4, std=0.1, backend=backend)
    checkpoint = tmp_path / "checkpoint.npz"
    stop_at = _progress_steps(backend, "sgd")[2]

    def progress(iteration, loss, rate):
        if iteration == stop_at:
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        _train(stopped, progress=progress, checkpoint=checkpoint, num_iters=120)
    np.random.seed(99)  # whatever the global state is now, the run's batches are saved
    resumed = TwoLayerNet(12, 16, 4, std=0.1, backend=backend)
    history = _train(resumed, resume=checkpoint, num_iters=120)
    _assert_same_run(resumed, history, reference, expected)
    with pytest.raises(ValueError, match="without a seed drew the batches of its 120 steps"):
        _train(TwoLayerNet(12, 16, 4, std=0.1, backend=backend), resume=checkpoint,
               num_iters=240)  # fmt: skip


def test_training_longer_from_a_checkpoint_equals_training_that_long(backend, tmp_path):
    """The step schedule's rates and every random draw are counted by the step, so a run
    of 100 steps resumed to 200 is the run of 200."""
    reference = _net(backend)
    expected = _train(reference, num_iters=200, momentum=0.9, dropout=0.2)
    checkpoint = tmp_path / "checkpoint.npz"
    _train(_net(backend), checkpoint=checkpoint, num_iters=100, momentum=0.9, dropout=0.2)
    assert read_checkpoint(checkpoint).iterations == 100
    longer = _net(backend)
    history = _train(longer, resume=checkpoint, num_iters=200, momentum=0.9, dropout=0.2)
    _assert_same_run(longer, history, reference, expected)


def test_a_checkpoint_loads_as_the_network_it_holds(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    net = _net("numpy")
    _train(net, checkpoint=checkpoint, num_iters=60)
    loaded = TwoLayerNet.load(checkpoint)
    for name, values in _host(net.params).items():
        assert np.array_equal(to_numpy(loaded.params[name]), values)
    assert loaded.last_training["iterations"] == 60


def test_a_temporary_file_left_by_a_killed_write_is_removed(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    stale = tmp_path / ".checkpoint.npz.k2j4x1.part"  # as a kill mid-write leaves it
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".model.npz.k2j4x1.part"
    other.write_bytes(b"not the checkpoint's")
    _train(_net("numpy"), checkpoint=checkpoint, num_iters=15)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "checkpoint.npz"]


def test_checkpoints_are_written_every_n_epochs(tmp_path):
    """300 rows in batches of 20: 15 steps an epoch; every 2 epochs, and at the end."""
    checkpoint = tmp_path / "checkpoint.npz"
    written = []

    def on_epoch(epoch, loss, val_acc):
        written.append((epoch, read_checkpoint(checkpoint).iterations if
                        checkpoint.exists() else None))  # fmt: skip

    _train(_net("numpy"), checkpoint=checkpoint, checkpoint_every=2, epochs=5,
           on_epoch=on_epoch)  # fmt: skip
    # on_epoch runs after the epoch's checkpoint: a search can send it on
    assert written == [(1, None), (2, 30), (3, 30), (4, 60), (5, 60)]
    assert read_checkpoint(checkpoint).iterations == 75


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"learning_rate": 0.1}, "learning_rate 0.1 (the checkpoint's: 0.05)"),
        ({"dropout": 0.5}, "dropout 0.5 (the checkpoint's: 0.2)"),
        ({"num_iters": 50}, "its run has taken 100 steps, more than num_iters=50"),
    ],
)
def test_resuming_another_run_is_refused_naming_what_differs(tmp_path, change, message):
    checkpoint = tmp_path / "checkpoint.npz"
    settings = {"num_iters": 100, "dropout": 0.2}
    _train(_net("numpy"), checkpoint=checkpoint, **settings)
    net = _net("numpy")
    before = _host(net.params)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _train(net, resume=checkpoint, **{**settings, **change})
    assert all(np.array_equal(before[k], v) for k, v in _host(net.params).items())


def test_resuming_on_other_data_or_network_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    _train(_net("numpy"), checkpoint=checkpoint, num_iters=40)
    X, y, X_val, y_val = _data()
    with pytest.raises(ValueError, match="the training data \\(not the checkpoint's\\)"):
        _net("numpy").train(X + 1, y, X_val, y_val, learning_rate=0.05, batch_size=20,
                            num_iters=40, resume=checkpoint)  # fmt: skip
    with pytest.raises(ValueError, match="seed 4 \\(the checkpoint's: 3\\)"):
        _train(_net("numpy", seed=4), resume=checkpoint, num_iters=40)
    X, y, X_val, y_val = _data()
    settings = TrainSettings(input_size=12, hidden_size=16, output_size=4, seed=3, std=0.1,
                             learning_rate=0.05, batch_size=20, num_iters=40)  # fmt: skip
    with pytest.raises(ValueError, match="its run drew its seed from a generator"):
        fit(_net("numpy").params, settings, X, y, X_val, y_val, rng=None,
            resume=read_checkpoint(checkpoint))  # fmt: skip


def test_a_longer_cosine_run_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    _train(_net("numpy"), checkpoint=checkpoint, num_iters=40, schedule="cosine")
    with pytest.raises(ValueError, match="cosine schedule's rates are set by the run's length"):
        _train(_net("numpy"), resume=checkpoint, num_iters=80, schedule="cosine")


def test_a_model_file_or_a_damaged_checkpoint_is_refused(tmp_path):
    model = tmp_path / "model.npz"
    net = _net("numpy")
    _train(net, num_iters=20)
    net.save(model)
    with pytest.raises(ModelFileError, match="a model file, not a checkpoint"):
        _train(_net("numpy"), resume=model, num_iters=20)
    checkpoint = tmp_path / "checkpoint.npz"
    _train(_net("numpy"), checkpoint=checkpoint, num_iters=20)
    arrays = dict(np.load(checkpoint))
    shorter = {**arrays, "checkpoint.loss_history": arrays["checkpoint.loss_history"][:-1]}
    np.savez(tmp_path / "shorter.npz", **shorter)
    with pytest.raises(ModelFileError, match=r"checkpoint.loss_history has shape \(19,\)"):
        read_checkpoint(tmp_path / "shorter.npz")
    metadata = json.loads(str(arrays["metadata"]))
    metadata["checkpoint"]["iterations"] = 21
    np.savez(tmp_path / "longer.npz", **{**arrays, "metadata": np.array(json.dumps(metadata))})
    with pytest.raises(ModelFileError, match="of 21 steps holds a loss history of another"):
        read_checkpoint(tmp_path / "longer.npz")


def _edited(checkpoint, tmp_path, name, *, metadata=None, arrays=None):
    """A copy of ``checkpoint`` with its metadata's ``checkpoint`` (or ``training``) fields
    and some arrays replaced, as a hostile or damaged file would have them."""
    stored = dict(np.load(checkpoint))
    described = json.loads(str(stored["metadata"]))
    for path, value in (metadata or {}).items():
        *outer, last = path.split(".")
        holder = described
        for key in outer:
            holder = holder[key]
        holder[last] = value
    for key, value in (arrays or {}).items():
        stored[key] = value
        described["checkpoint"]["arrays"][key.removeprefix("checkpoint.")] = {
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
    edited = tmp_path / f"{name}.npz"
    np.savez(edited, **{**stored, "metadata": np.array(json.dumps(described))})
    return edited


@pytest.mark.parametrize(
    ("metadata", "arrays", "message"),
    [
        ({"checkpoint.best_acc": float("nan")}, None, "iterations, seed or epochs out of range"),
        ({"checkpoint.best_acc": 2.0}, None, "iterations, seed or epochs out of range"),
        ({"checkpoint.best_epoch": None}, None, "best and stopped epochs do not fit"),
        ({"checkpoint.stopped_epoch": 99}, None, "best and stopped epochs do not fit"),
        ({"checkpoint.rng_state.state.state": 2**200}, None, "generator state does not fit"),
        ({"checkpoint.checked": -1}, None, "checked step is malformed"),
        ({"checkpoint.checked": True}, None, "checked step is malformed"),
        ({"checkpoint.stopped_epoch": 1}, None, "best and stopped epochs do not fit"),
        ({"checkpoint.data": {}}, None, "checkpoint's state is incomplete"),
        ({"checkpoint.rng_state": None}, None, "batch rows (kept for a run without"),
        (None, {"checkpoint.train_acc_history": np.zeros(1)}, "accuracy histories do not fit"),
        (None, {"checkpoint.lab_rows": np.zeros((45, 20), np.int64)}, "batch rows (kept for"),
    ],
)
def test_a_hostile_checkpoint_is_refused_before_any_step(tmp_path, metadata, arrays, message):
    """Fields that do not add up are a ModelFileError naming the file, never another
    error or a run on nonsense."""
    checkpoint = tmp_path / "checkpoint.npz"
    settings = {"num_iters": 45, "early_stopping": True, "patience": 5}
    _train(_net("numpy"), checkpoint=checkpoint, **settings)
    edited = _edited(checkpoint, tmp_path, "edited", metadata=metadata, arrays=arrays)
    net = _net("numpy")
    with pytest.raises(ModelFileError, match=re.escape(message)):
        _train(net, resume=edited, **settings)
    assert net.last_training is None


def test_a_checkpoint_without_its_best_parameters_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    settings = {"num_iters": 45, "restore_best": True}
    _train(_net("numpy"), checkpoint=checkpoint, **settings)
    stored = dict(np.load(checkpoint))
    described = json.loads(str(stored["metadata"]))
    for name in ("W1", "b1", "W2", "b2"):
        del stored[f"checkpoint.best.{name}"], described["checkpoint"]["arrays"][f"best.{name}"]
    edited = tmp_path / "edited.npz"
    np.savez(edited, **{**stored, "metadata": np.array(json.dumps(described))})
    with pytest.raises(ModelFileError, match="best and stopped epochs do not fit"):
        _train(_net("numpy"), resume=edited, **settings)


def test_a_checkpoint_of_other_sizes_or_lab_rows_out_of_range_is_refused(tmp_path):
    checkpoint = tmp_path / "checkpoint.npz"
    np.random.seed(0)
    _train(TwoLayerNet(12, 16, 4, std=0.1), checkpoint=checkpoint, num_iters=30)
    rows = np.load(checkpoint)["checkpoint.lab_rows"].copy()
    rows[0, 0] = 300  # one past the last row
    edited = _edited(checkpoint, tmp_path, "rows", arrays={"checkpoint.lab_rows": rows})
    with pytest.raises(ModelFileError, match="batch rows do not fit its run"):
        _train(TwoLayerNet(12, 16, 4, std=0.1), resume=edited, num_iters=30)
    smaller = {"W1": np.zeros((12, 8)), "b1": np.zeros(8), "W2": np.zeros((8, 4))}
    edited = _edited(checkpoint, tmp_path, "sizes", metadata={"sizes.hidden_size": 8},
                     arrays=smaller)  # fmt: skip
    with pytest.raises(ModelFileError):
        _train(TwoLayerNet(12, 16, 4, std=0.1), resume=edited, num_iters=30)


# -- processes stopped from outside ---------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import pickle, signal, sys, time
    sys.path.insert(0, {tests!r})
    import conftest  # the backends configured as the tests configure them
    import test_checkpoint as t
    from xpnet.errors import TrainingInterrupted
    backend = pickle.loads(bytes.fromhex({backend!r}))  # a Backend pickles by name and device
    done = [0]
    def slowly(iteration, loss, rate):  # 2 ms a step, however the steps are chunked
        time.sleep(0.002 * (iteration + 1 - done[0]))
        done[0] = iteration + 1
    print("started", flush=True)
    try:
        t._train(t._net(backend), progress=slowly, checkpoint={checkpoint!r},
                 checkpoint_every=1, **dict(t.SETUPS["sgd"], num_iters=1500))
    except TrainingInterrupted as stopped:
        print("interrupted by", stopped.signal.name, "at", stopped.iterations, flush=True)
        sys.exit(128 + stopped.signal)
    print("finished", flush=True)
    """
)


def _child(backend, checkpoint):
    code = _CHILD.format(tests=str(Path(__file__).parent), backend=pickle.dumps(backend).hex(),
                         checkpoint=str(checkpoint))  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_process_stopped_by_a_signal_resumes_bit_for_bit(backend, tmp_path, signum):
    """SIGTERM: the run stops after its step and writes its checkpoint there. SIGKILL,
    at a random moment, even mid-write: the latest checkpoint is whole, and the run goes
    on from it."""
    checkpoint = tmp_path / CHECKPOINT_FILE
    process = _child(backend, checkpoint)
    assert process.stdout.readline() == "started\n", process.stderr.read()
    while not checkpoint.exists():  # an epoch is done
        assert process.poll() is None, process.stderr.read()
        time.sleep(0.01)
    time.sleep(np.random.default_rng().uniform(0, 0.5))
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert "finished" not in stdout, "the run ended before the signal: it tests nothing"
    stopped_at = read_checkpoint(checkpoint).iterations
    if signum == signal.SIGTERM:  # stopped after a step, and told so
        assert process.returncode == 128 + signum, stderr
        assert stdout.endswith(f"interrupted by SIGTERM at {stopped_at}\n")
    else:
        assert process.returncode == -signum, stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[-1] == CHECKPOINT_FILE  # and perhaps a temporary file a kill cut short
    assert 0 < stopped_at < 1500
    reference = _net(backend)
    settings = dict(SETUPS["sgd"], num_iters=1500)
    expected = _train(reference, **settings)
    resumed = _net(backend)
    history = _train(resumed, resume=checkpoint, **settings)
    _assert_same_run(resumed, history, reference, expected)


_FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys, warnings
    sys.path.insert(0, {tests!r})
    import test_checkpoint as t
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    t._train(t._net("numpy"), checkpoint={checkpoint!r}, num_iters=15)
    limit = os.path.getsize({checkpoint!r}) + 64  # room for this one, not a longer history
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t._train(t._net("numpy"), checkpoint={checkpoint!r}, resume={checkpoint!r},
                 num_iters=60)
    print(len(caught), caught[0].message if caught else "")
    """
)


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    """A write that fails (here: past the process's file-size limit, as a full disk
    fails) warns, keeps the previous checkpoint whole, and the run goes on."""
    checkpoint = tmp_path / CHECKPOINT_FILE
    code = _FULL_DISK.format(tests=str(Path(__file__).parent), checkpoint=str(checkpoint))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    count, _, message = result.stdout.partition(" ")
    assert int(count) >= 1  # the writes after the first epoch all failed
    assert "could not write the checkpoint" in message
    assert " at step 30 (" in message
    assert message.endswith("; the previous one (step 15) is whole; training goes on\n")
    assert read_checkpoint(checkpoint).iterations == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]  # no part file
