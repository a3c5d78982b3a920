"""Training progress as a tqdm bar (``tqdm.auto``: a widget in Jupyter, a bar on stderr).

:class:`TrainingProgress` is public as ``xpnet.training.TrainingProgress``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from tqdm import tqdm as _std_tqdm


def progress_bar(**options: Any) -> _std_tqdm[Any]:
    """A ``tqdm.auto`` bar: a widget in Jupyter with ipywidgets, else a text bar.

    ``tqdm.auto`` is imported here, when a bar is made, not when xpnet is: in a Jupyter
    kernel without ipywidgets it warns as it is imported, and a session that draws no bar
    should not see that.
    """
    from tqdm.auto import tqdm

    return tqdm(**options)


class TrainingProgress:
    """``train(progress=...)`` as a tqdm bar: iterations, loss, learning rate and it/s.

    Reading the loss waits for the device, so it is read only when the bar is redrawn.

    Parameters
    ----------
    total : int
        The number of training iterations.
    **options
        Passed to ``tqdm`` (``file``, ``mininterval``, ``disable``, ...).

    Examples
    --------
    In a notebook, a widget; in a terminal, a bar on stderr::

        progress = TrainingProgress(2000)
        net.train(X, y, X_val, y_val, num_iters=2000, progress=progress)
        progress.close()
    """

    def __init__(self, total: int, **options: Any):
        self.total = total
        self.bar = progress_bar(total=total, unit="it", **options)

    def __call__(self, iteration: int, loss: Any, learning_rate: float) -> None:
        bar, done = self.bar, iteration + 1
        if not bar.disable and (
            done >= self.total or time.time() - bar.last_print_t >= bar.mininterval
        ):
            postfix = f"loss {number(float(loss))}, lr {learning_rate:.2e}"
            bar.set_postfix_str(postfix, refresh=False)
        bar.update(done - bar.n)

    def close(self) -> None:
        """End the bar (once; again is a no-op)."""
        self.bar.close()


def number(value: float) -> str:
    """A loss, bounded in width: ``0.0117``, ``1.2e+190``, ``inf``, ``nan``."""
    if not math.isfinite(value) or abs(value) >= 1e5:
        return f"{value:.2g}" if math.isfinite(value) else str(value)
    return f"{value:.4f}"
