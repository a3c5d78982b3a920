"""Draw docs/distorted_digits.png: MNIST digits and the distortions of --recipe best-augmented.

    python docs/distorted_digits.py

The first row shows eight training digits as they are. Rows two to four: the same
digits with the recipe's affine and elastic distortions as training draws them (steps
0, 1 and 2 of a run with seed 0; the elastic field drawn 8x8 and mapped to 28x28, see
xpnet/augment.py). Rows five and six: the same affine distortions with Simard's field
drawn at full size (28x28 uniforms, smoothed), for comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xpnet import plots
from xpnet import random as xr
from xpnet.augment import AUGMENTATIONS, gaussian_matrix
from xpnet.data import read_data_sets
from xpnet.training import distortion_noise


def main() -> None:
    X_train, *_ = read_data_sets()
    digits = X_train[:8].reshape(8, 784) / 255
    augment = AUGMENTATIONS["affine+elastic"]
    assert augment is not None
    on = {"xp": np, "device": "cpu"}
    keys = (xr.stream_key(0, 2, **on), xr.stream_key(0, 3, **on))
    constants = augment.constants(np, np.float64, "cpu")
    rows = [digits]
    for step in range(3):
        noise = distortion_noise(augment, np, keys, np.int32(step), 8, "cpu")
        rows.append(augment.apply(np, digits, noise, constants))
    smoothing = gaussian_matrix(28, augment.elastic_sigma)
    simard = {"field_rows": smoothing, "field_columns": smoothing}
    rng = np.random.default_rng(0)
    for step in range(3, 5):
        noise = distortion_noise(augment, np, keys, np.int32(step), 8, "cpu")
        noise["field"] = rng.uniform(-1, 1, (8, 2, 28, 28))
        rows.append(augment.apply(np, digits, noise, simard))
    title = (
        "MNIST digits (top); affine + elastic distortions as trained (rows 2-4)\n"
        "and with Simard's full-size elastic field (rows 5-6)"
    )
    figure = plots.plot_digits(np.concatenate(rows), columns=8, title=title)
    plots.save_figure(figure, Path(__file__).with_name("distorted_digits.png"))


if __name__ == "__main__":
    main()
