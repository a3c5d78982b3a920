"""``xpnet tune``: the lab's hyperparameter search, with Optuna and Dask distributed.

Optuna decides what to try and records every trial (in ``study.db``, SQLite, by default,
or any Optuna storage); Dask runs the trials, on a local cluster of worker processes
started here, or on an existing cluster (``scheduler=``), and each trial reports its epochs
through the scheduler. Needs Optuna and Dask distributed (``pip install optuna
distributed``; from a checkout, ``pip install ".[tune]"``)::

    from xpnet.tune import Range, tune
    result = tune(trials=20, space={"hidden_size": Range(50, 400, log=True, integer=True)})
    print(result.best_value, result.command)
"""

from xpnet.tune._search import TuneResult, train_command, tune
from xpnet.tune._space import Choices, Range, SearchSpace, default_space

__all__ = [
    "Choices",
    "Range",
    "SearchSpace",
    "TuneResult",
    "default_space",
    "train_command",
    "tune",
]
