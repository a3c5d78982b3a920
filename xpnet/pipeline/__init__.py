"""The main job as a library call: data, preprocessing, network, training, metrics, files.

``xpnet train`` is :func:`run` followed by :func:`save_run`; ``xpnet evaluate`` is
:func:`evaluate`; the notebook, the benchmark and ``xpnet tune`` use the same
pieces, so each does what the command line does in as many lines::

    from xpnet.pipeline import run, save_run
    result = run("fast", backend="torch", dtype="float32")
    print(result.val_acc, result.test_acc)
    save_run(result, "xpnet-output")

A run in its steps, each a module of its own: the data read and preprocessed
(:func:`prepare_data`, in ``_data``); the recipe checked for that data and compute
before anything is read (:func:`plan_run`, ``_plan``); the network built, trained and
measured (:func:`run_plan`: :func:`make_net` then :func:`train_and_measure`, ``_run``);
its files written (:func:`save_run`, ``_outputs``); a saved model measured again
(:func:`evaluate`, ``_evaluate``); a run planned again from its checkpoint, to resume
it (:func:`plan_resumed`, ``_resume``); several plans trained together
(:func:`run_plans_together`, ``_together``).
"""

from xpnet.pipeline._data import TRAIN_ROWS, PreparedData, prepare_data
from xpnet.pipeline._evaluate import Evaluation, check_plots_dir, evaluate
from xpnet.pipeline._outputs import check_output_dir, save_run
from xpnet.pipeline._plan import RunPlan, plan_run, recipe_with
from xpnet.pipeline._resume import plan_resumed
from xpnet.pipeline._run import (
    RunMetadata,
    RunResult,
    make_net,
    run,
    run_plan,
    train_and_measure,
)
from xpnet.pipeline._together import run_plans_together

__all__ = [
    "TRAIN_ROWS",
    "Evaluation",
    "PreparedData",
    "RunMetadata",
    "RunPlan",
    "RunResult",
    "check_output_dir",
    "check_plots_dir",
    "evaluate",
    "make_net",
    "plan_resumed",
    "plan_run",
    "prepare_data",
    "recipe_with",
    "run",
    "run_plan",
    "run_plans_together",
    "save_run",
    "train_and_measure",
]
