"""Training recipes: the lab's settings, and a fast one.

A recipe is everything ``xpnet train`` needs besides the data: preprocessing,
network size and initialisation, and the optimiser's settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from xpnet.neural_net import Init
from xpnet.preprocess import PreprocessingName
from xpnet.training import Schedule

__all__ = ["FAST", "LAB", "RECIPES", "Recipe"]


@dataclass(frozen=True)
class Recipe:
    """Settings for one way of training the network on MNIST.

    Attributes mirror :class:`xpnet.TwoLayerNet` and its ``train`` method;
    ``preprocessing`` names one of :data:`xpnet.preprocess.PREPROCESSINGS`.
    """

    preprocessing: PreprocessingName
    hidden_size: int
    init: Init
    std: float
    learning_rate: float
    learning_rate_decay: float
    schedule: Schedule
    reg: float
    num_iters: int
    batch_size: int
    momentum: float
    shuffle: bool

    def train_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``TwoLayerNet.train``."""
        return {
            k: v
            for k, v in asdict(self).items()
            if k not in ("preprocessing", "hidden_size", "init", "std")
        }


#: The lab's best settings (section 10 of the handout): 0.9806 validation accuracy there.
LAB = Recipe(
    preprocessing="subtract_mean_image",
    hidden_size=175,
    init="gaussian",
    std=1e-4,
    learning_rate=1e-3,
    learning_rate_decay=0.98,
    schedule="step",
    reg=5e-6,
    num_iters=10_000,
    batch_size=100,
    momentum=0.0,
    shuffle=False,
)

#: Inputs scaled to 0..1 and centred, He initialisation, momentum SGD with a cosine
#: schedule over three shuffled epochs: 0.98 validation accuracy in about two epochs.
FAST = Recipe(
    preprocessing="scale_and_center",
    hidden_size=128,
    init="he",
    std=0.0,
    learning_rate=0.3,
    learning_rate_decay=1.0,
    schedule="cosine",
    reg=1e-4,
    num_iters=3 * (55_000 // 128),
    batch_size=128,
    momentum=0.9,
    shuffle=True,
)

RECIPES = {"lab": LAB, "fast": FAST}
