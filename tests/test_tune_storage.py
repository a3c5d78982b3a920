"""A study's storage read back with suspicion: journals cut off or corrupted on disk,
trials that this search cannot have made, trials left running by a dead search."""

from __future__ import annotations

import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna", reason="xpnet tune needs pip install 'xpnet[tune]'")

from xpnet.recipes import FAST  # noqa: E402
from xpnet.tune import Choices, Range, default_space  # noqa: E402
from xpnet.tune._search import _finished_count, _live_running, _study  # noqa: E402
from xpnet.tune._space import distributions, fingerprint  # noqa: E402
from xpnet.tune._storage import open_storage, storage_spec  # noqa: E402

pytestmark = pytest.mark.tune

SPACE = {**default_space(FAST), "hidden_size": Range(16, 64, log=True, integer=True),
         "batch_size": Choices((64, 128))}  # fmt: skip
SEARCH_ID = fingerprint(SPACE, {"recipe": "fast"})


def a_study(tmp_path, finished=3):
    """A real journal on disk holding ``finished`` complete trials of SPACE."""
    spec = storage_spec(None, tmp_path)
    study = _study(spec, "s", SEARCH_ID, 0, SPACE)
    for number in range(finished):
        trial = study.ask(distributions(SPACE))
        study.tell(trial, 0.5 + number / 10)
    return spec, tmp_path / "study.log"


def reloaded(spec):
    """The study as a fresh process would read it."""
    return optuna.load_study(study_name="s", storage=open_storage(spec))


def test_a_journal_cut_off_mid_record_is_set_aside_and_the_study_goes_on(tmp_path, capsys):
    spec, journal = a_study(tmp_path)
    whole = journal.read_bytes()
    cut = len(whole) - 40  # a crash or a full disk in the middle of the last record
    with open(journal, "r+b") as f:
        f.truncate(cut)
    kept = whole[: whole.rindex(b"\n", 0, cut) + 1]

    study = _study(spec, "s", SEARCH_ID, 0, SPACE)  # what the next xpnet tune does first
    study.tell(study.ask(distributions(SPACE)), 0.9)  # and then it appends

    assert journal.read_bytes().startswith(kept)
    (aside,) = tmp_path.glob("study.log.cut-*")
    assert aside.read_bytes() == whole[len(kept) : cut]  # set aside, not deleted
    assert str(aside) in capsys.readouterr().err
    values = [t.value for t in reloaded(spec).trials if t.state.name == "COMPLETE"]
    assert values[-1] == 0.9
    assert values[:2] == [0.5, 0.6]  # the trials before the cut are all there


def test_a_journal_corrupt_mid_file_is_refused_with_its_name_and_what_to_do(tmp_path):
    spec, journal = a_study(tmp_path)
    lines = journal.read_bytes().split(b"\n")
    lines[3] = lines[3][:10] + b"#" + lines[3][11:]
    journal.write_bytes(b"\n".join(lines))
    before = journal.read_bytes()
    with pytest.raises(ValueError, match="line 4 is not a journal record") as caught:
        _study(spec, "s", SEARCH_ID, 0, SPACE)
    assert str(journal) in str(caught.value)
    assert "keep only its first 3 lines" in str(caught.value)
    assert journal.read_bytes() == before


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
    spec, journal = a_study(tmp_path)
    study = reloaded(spec)
    if params is None:  # every knob, in range, but a value no accuracy has
        params = dict(study.trials[0].params)
    crafted = optuna.distributions.CategoricalDistribution
    study.add_trial(optuna.trial.create_trial(
        params=params, distributions={k: crafted([v]) for k, v in params.items()}, value=value,
    ))  # fmt: skip
    before = journal.read_bytes()
    with pytest.raises(ValueError, match="trial 3 has " + message.replace("(", r"\(")) as caught:
        _study(spec, "s", SEARCH_ID, 0, SPACE)
    assert "another --study-name" in str(caught.value)
    assert journal.read_bytes() == before


def test_trials_left_running_by_a_dead_search_are_cancelled_not_counted(tmp_path):
    spec, _ = a_study(tmp_path, finished=2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        study = reloaded(spec)
        import socket

        for pid in (int(dead.stdout), alive.pid):
            trial = study.ask(distributions(SPACE))
            trial.set_user_attr("driver", f"{socket.gethostname()}:{pid}")
        study = _study(spec, "s", SEARCH_ID, 0, SPACE)
        states = [(t.state.name, t.user_attrs.get("cancelled", False)) for t in study.trials]
        assert states[2] == ("FAIL", True)  # the dead one's: cancelled
        assert states[3] == ("RUNNING", False)  # the live one's: still running
        assert _finished_count(study) == 2
        assert [t.number for t in _live_running(study)] == [3]
    finally:
        alive.kill()
        alive.wait()
