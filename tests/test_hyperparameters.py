"""The hyperparameters' table: one row, and every list of hyperparameters has it.

A copy of the package with one row added to :class:`xpnet.hyperparameters.Hyperparameters`
(and nothing else changed) is imported in a fresh process, which reports what each
consumer of the table made of the new row: the training settings and their checks, the
recipes, the ``xpnet train`` and ``xpnet tune`` options, tune's default search space,
and the scikit-learn estimator's parameters and constraints.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xpnet
from xpnet.hyperparameters import rows
from xpnet.training import TrainSettings

#: The row added: a hyperparameter the package has never heard of.
NEW_ROW = """\
    label_smoothing: float = field(
        default=0.0,
        metadata=row(
            help="the weight of the uniform distribution mixed into the one-hot targets",
            high=0.5,
            search=Search("linear", lambda _, hp: (0.0, 0.2)),
        ),
    )
"""
#: Where it goes: before the table's last row.
ANCHOR = "    dropout: float = field("

#: What the fresh process reports of the new row, as JSON.
REPORT = r"""
import contextlib, io, json, sys
import xpnet
assert xpnet.__file__.startswith(sys.argv[1]), xpnet.__file__  # the copy, not this checkout
from xpnet.cli import main
from xpnet.recipes import LAB
from xpnet.training import TrainSettings

def help_of(command):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([command, "-h"])
    return " ".join(out.getvalue().split())

found = {}
sizes = {"input_size": 4, "hidden_size": 3, "output_size": 2}
found["settings"] = TrainSettings(**sizes, label_smoothing=0.25).to_dict()["label_smoothing"]
found["default"] = TrainSettings(**sizes).label_smoothing
try:
    TrainSettings(**sizes, label_smoothing=0.75)
except ValueError as err:
    found["refused"] = str(err)
found["recipe"] = LAB.settings(input_size=784, output_size=10, seed=0).label_smoothing
found["train_help"] = help_of("train")
found["tune_help"] = help_of("tune")
from xpnet.tune._space import default_space
found["space"] = repr(default_space(LAB).get("label_smoothing"))
try:
    from xpnet.sklearn import TwoLayerClassifier
except ImportError:
    pass
else:
    import numpy as np
    estimator = TwoLayerClassifier(label_smoothing=0.25, hidden_size=4, max_iter=1,
                                   random_state=0)
    found["estimator"] = estimator.get_params()["label_smoothing"]
    found["constraints"] = [str(c) for c in
                            TwoLayerClassifier._parameter_constraints["label_smoothing"]]
    rng = np.random.default_rng(0)
    fitted = estimator.fit(rng.standard_normal((20, 3)), rng.integers(0, 2, 20))
    found["fitted"] = fitted.net_.last_training["settings"]["label_smoothing"]
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def new_row(tmp_path_factory):
    """What a copy of the package with :data:`NEW_ROW` makes of it."""
    root = tmp_path_factory.mktemp("copy")
    shutil.copytree(Path(xpnet.__file__).parent, root / "xpnet",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    table = root / "xpnet" / "hyperparameters.py"
    text = table.read_text()
    assert text.count(ANCHOR) == 1, "the table's last row moved: update ANCHOR"
    table.write_text(text.replace(ANCHOR, NEW_ROW + ANCHOR))
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "1000"}
    result = subprocess.run([sys.executable, "-c", REPORT, str(root)], capture_output=True,
                            text=True, env=env, cwd=root, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_new_row_is_a_checked_training_setting_with_its_default(new_row):
    assert new_row["settings"] == 0.25
    assert new_row["default"] == 0.0
    assert new_row["refused"] == "label_smoothing must be in [0, 0.5], got 0.75"
    assert new_row["recipe"] == 0.0  # a recipe without it takes the default


def test_a_new_row_is_an_option_of_train_and_a_range_of_tune(new_row):
    assert (
        "--label-smoothing LABEL_SMOOTHING the weight of the uniform distribution mixed into "
        "the one-hot targets: lab 0.0, fast 0.0, best 0.0, best-augmented 0.0"
    ) in new_row["train_help"]
    assert (
        "--label-smoothing LOW HIGH the range of label_smoothing (linear)" in (new_row["tune_help"])
    )


def test_a_new_row_is_searched_by_default_where_the_table_says(new_row):
    assert new_row["space"] == "Range(low=0.0, high=0.2, log=False, integer=False)"


@pytest.mark.sklearn
def test_a_new_row_is_a_parameter_of_the_estimator_with_its_constraints(new_row):
    pytest.importorskip("sklearn")
    assert new_row["estimator"] == 0.25
    assert new_row["constraints"] == ["a float in the range [0.0, 0.5]"]
    assert new_row["fitted"] == 0.25  # and it reaches the training's settings


def test_every_range_of_the_table_is_what_the_settings_refuse():
    """Just outside each real-valued row's range the settings refuse the value; at its
    closed ends they take it."""
    sizes = {"input_size": 4, "hidden_size": 3, "output_size": 2}
    for row in rows():
        if row.kind is not float:
            continue
        ends = {row.low: not row.low_open, row.high: True}
        for value, taken in ends.items():
            if math.isinf(value):
                continue
            changes = {row.name: value, **({"optimizer": "adamw"} if row.name == "weight_decay"
                                           else {})}  # fmt: skip
            if taken:
                assert getattr(TrainSettings(**sizes, **changes), row.name) == value
            else:
                with pytest.raises(ValueError, match=f"{row.name} must be in"):
                    TrainSettings(**sizes, **changes)
        with pytest.raises(ValueError, match=f"{row.name} must be in"):
            TrainSettings(**sizes, **{row.name: row.low - 1e-3})
