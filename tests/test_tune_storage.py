"""A study's storage read back with suspicion: a writer killed mid-write, a file damaged on
disk, trials that this search cannot have made, trials left running by a dead search."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="xpnet tune needs pip install optuna distributed")

from xpnet.recipes import FAST  # noqa: E402
from xpnet.tune import Choices, Range, default_space  # noqa: E402
from xpnet.tune._space import distributions, identity  # noqa: E402
from xpnet.tune._study import (  # noqa: E402
    finished_count,
    heartbeats,
    open_storage,
    open_study,
    rows,
    storage_spec,
    to_run,
)

pytestmark = pytest.mark.tune

SPACE = {**default_space(FAST), "hidden_size": Range(16, 64, log=True, integer=True),
         "batch_size": Choices((64, 128))}  # fmt: skip
SEARCH = identity(SPACE, {"recipe": "fast"})


def opened(spec, storage=None):
    """The study as the next search opens it (checked, stale trials failed)."""
    storage = storage or open_storage(spec, create=True)
    return open_study(storage, spec, "s", SEARCH, 0, SPACE)


def a_study(tmp_path, finished=3):
    """A real SQLite study on disk (the default storage) holding ``finished`` complete trials."""
    spec = storage_spec(None, tmp_path)
    study = opened(spec)
    for number in range(finished):
        study.tell(study.ask(distributions(SPACE)), 0.5 + number / 10)
    return spec, tmp_path / "study.db"


def reloaded(spec):
    """The study as a fresh process would read it."""
    return optuna.load_study(study_name="s", storage=open_storage(spec))


WRITER = """
import sys
from tests.test_tune_storage import SPACE, opened
from xpnet.tune._space import distributions

study = opened(sys.argv[1])
for number in range(10**6):
    study.tell(study.ask(distributions(SPACE)), 0.5)
    print(number, flush=True)
"""


def test_a_search_killed_mid_write_loses_no_finished_trial(tmp_path):
    spec = storage_spec(None, tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, spec], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    told = [int(writer.stdout.readline()) for _ in range(20)]  # it goes on writing, then:
    writer.kill()
    writer.wait()
    assert (tmp_path / "study.db").is_file()  # the default storage: SQLite, in the output dir

    study = opened(spec)
    study.tell(study.ask(distributions(SPACE)), 0.9)
    states = {t.number: t.state.name for t in reloaded(spec).trials}
    assert all(states[number] == "COMPLETE" for number in told)  # every one told is there
    assert list(states.values()).count("COMPLETE") >= len(told) + 1


def test_a_damaged_study_file_is_refused_unchanged_with_its_name(tmp_path):
    spec, path = a_study(tmp_path)
    damaged = bytearray(path.read_bytes())
    damaged[100:4096] = b"#" * (4096 - 100)  # the schema, after SQLite's 100-byte header
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="is not a study storage Optuna can use") as caught:
        opened(spec)
    assert str(path) in str(caught.value)
    assert "choose another storage or output_dir" in str(caught.value)  # its arguments
    assert path.read_bytes() == damaged


def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a study\n")
    with pytest.raises(ValueError, match="is not a study storage"):
        opened(storage_spec(notes, tmp_path))
    assert notes.read_text() == "not a study\n"


def test_a_journal_is_kept_only_when_asked_for_and_has_no_heartbeats(tmp_path):
    journal = (tmp_path / "study.log").resolve()
    spec = storage_spec(f"journal:{journal}", tmp_path)
    storage = open_storage(spec, create=True)
    assert heartbeats(storage) is None
    study = opened(spec, storage)
    study.tell(study.ask(distributions(SPACE)), 0.7)
    assert [t.value for t in reloaded(spec).trials] == [0.7]
    assert journal.is_file()
    assert not (tmp_path / "study.db").exists()
    assert heartbeats(open_storage(storage_spec(None, tmp_path), create=True)) is not None


@pytest.mark.parametrize(
    ("params", "value", "message"),
    [
        ({"augment": "bogus"}, 0.99, "augment='bogus', a knob this search does not turn"),
        ({"optimizer": "adam"}, 0.99, "optimizer='adam', a knob this search does not turn"),
        ({"hidden_size": 100000}, 0.99, "hidden_size=100000, outside the search space"),
        ({"batch_size": 7}, 0.99, "batch_size=7, outside the search space"),
        ({"hidden_size": 32}, 0.99, "no value for"),
        (None, 5.0, "a validation accuracy of 5.0"),
    ],
)
def test_a_crafted_trial_outside_the_space_is_refused_before_use(tmp_path, params, value,
                                                                message):  # fmt: skip
    spec, path = a_study(tmp_path, finished=0)
    study = reloaded(spec)
    if params is None:  # every knob, in range, but a value no accuracy has
        params = {name: d.choices[0] if hasattr(d, "choices") else d.low
                  for name, d in distributions(SPACE).items()}  # fmt: skip
    # First in its study: Optuna refuses a parameter's second distribution of another kind.
    crafted = optuna.distributions.CategoricalDistribution
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: crafted([v]) for k, v in params.items()}, value=value,
    ))  # fmt: skip
    before = path.read_bytes()
    with pytest.raises(ValueError, match="trial 0 has " + message.replace("(", r"\(")) as caught:
        opened(spec)
    assert "another study_name (or output_dir)" in str(caught.value)
    assert path.read_bytes() == before


def test_trials_of_a_search_that_stopped_beating_are_failed_and_run_again(tmp_path):
    spec, _ = a_study(tmp_path, finished=2)
    # The storage the search opens, with Optuna's heartbeats one second apart, not five.
    storage = optuna.storages.RDBStorage(
        spec, heartbeat_interval=1, grace_period=1,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(3),
    )  # fmt: skip
    study = reloaded(spec)
    dead, alive = (study.ask(distributions(SPACE)) for _ in range(2))
    study_id = storage.get_study_id_from_name("s")
    ids = {t.number: storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
           for t in (dead, alive)}  # fmt: skip
    storage.record_heartbeat(ids[dead.number])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # one search goes on beating, the other has died
        storage.record_heartbeat(ids[alive.number])
        time.sleep(0.2)

    study = opened(spec, storage)
    states = [row["state"] for row in rows(study)]
    assert states == ["COMPLETE", "COMPLETE", "RETRIED", "RUNNING", "WAITING"]
    (retried,) = (row for row in rows(study) if row["state"] == "RETRIED")
    assert retried["error"] == "its search stopped (no heartbeat); run again as trial 4"
    assert study.trials[4].params == dead.params  # the same settings, queued
    assert finished_count(study) == 2  # the failed one does not count
    assert to_run(study, 4) == [0, 1, 3, 4]
