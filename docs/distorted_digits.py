"""Draw docs/distorted_digits.png: MNIST digits and the distortions of --recipe best-augmented.

    python docs/distorted_digits.py

The first row shows eight training digits as they are; each further row the same digits
with a fresh draw of the recipe's affine and elastic distortions (seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xpnet import plots
from xpnet.augment import AUGMENTATIONS
from xpnet.backend import resolve_backend
from xpnet.data import read_data_sets


def main() -> None:
    X_train, *_ = read_data_sets()
    digits = X_train[:8].reshape(8, 784) / 255
    augment = AUGMENTATIONS["affine+elastic"]
    assert augment is not None
    xp = resolve_backend("numpy").xp
    rng = np.random.default_rng(0)
    constants = augment.constants(xp, np.float64, "cpu")
    rows = [digits]
    for _ in range(5):
        noise = {k: v[0] for k, v in augment.draw(rng, 1, 8).items()}
        rows.append(augment.apply(xp, digits, noise, constants))
    title = "MNIST digits (top) and five draws of affine + elastic distortions"
    figure = plots.plot_digits(np.concatenate(rows), columns=8, title=title)
    plots.save_figure(figure, Path(__file__).with_name("distorted_digits.png"))


if __name__ == "__main__":
    main()
