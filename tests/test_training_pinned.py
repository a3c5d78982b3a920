"""Training's numbers, pinned: the same seed and settings give bit-identical parameters
and history to those recorded at commit 3524cc8 (before the package was reorganised).

On NumPy, eager, with the BLAS on one thread (a product's last bits depend on how the
BLAS splits it between threads): a SHA-256 of the parameters' bytes and the history's
JSON. A change that moves any bit of any case fails here; ``sum(W1)`` and the last
loss, printed on failure, say how far it moved.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from xpnet import TwoLayerNet
from xpnet.augment import AUGMENTATIONS

#: name: (network arguments, train arguments, SHA-256, sum(W1), last loss), as at 3524cc8.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, float, float]] = {
    "sgd-momentum-float64": (
        {"hidden_size": 32, "dtype": "float64", "seed": 3, "std": 1e-2},
        {"learning_rate": 0.05, "learning_rate_decay": 0.9, "reg": 1e-3, "num_iters": 30,
         "batch_size": 40, "momentum": 0.9},
        "4c63124b270b6801a32707ade6c392bc81d33afddacc6bc0dbcd6a41655c8e1f",
        -12.019041265405772, 2.271632786915631,
    ),
    # 128 x 784 by 784 x 512 products, run in halves on two threads (threads=2); pinned
    # from 3524cc8's run of the same case with whole products on one BLAS thread
    "sgd-momentum-halves": (
        {"hidden_size": 512, "dtype": "float64", "seed": 7, "std": 1e-2},
        {"learning_rate": 0.05, "learning_rate_decay": 0.9, "reg": 1e-3, "num_iters": 20,
         "batch_size": 128, "momentum": 0.9, "threads": 2},
        "b81c175f50ddef3fe640b4acc2d1df91d4f090fcfddd868e92f633cd179f68f9",
        8.84765249307697, 2.305025948172718,
    ),
    "adam-dropout-float32": (
        {"hidden_size": 32, "dtype": "float32", "seed": 4, "init": "he", "std": 0.0},
        {"learning_rate": 1e-3, "reg": 1e-4, "num_iters": 30, "batch_size": 40,
         "optimizer": "adam", "dropout": 0.5},
        "0d2f073838ae32adcfd19856405e1bba4ada55f0807fcd2a20df6624aa3db343",
        -99.28402709960938, 2.2497804164886475,
    ),
    "adamw-shuffle-cosine-affine": (
        {"hidden_size": 32, "dtype": "float32", "seed": 5, "init": "he", "std": 0.0},
        {"learning_rate": 1e-3, "learning_rate_decay": 1.0, "reg": 1e-4, "weight_decay": 0.01,
         "num_iters": 30, "batch_size": 40, "optimizer": "adamw", "shuffle": True,
         "schedule": "cosine", "augment": AUGMENTATIONS["affine"]},
        "7cd88220d5bc5f1b956b0517818164450abd2d52fa25b705b8438bc018758e45",
        -53.16168212890625, 2.311551809310913,
    ),
    "best-augmented-elastic": (
        {"hidden_size": 64, "dtype": "float32", "seed": 6, "init": "he", "std": 0.0},
        {"learning_rate": 1e-3, "learning_rate_decay": 1.0, "reg": 0.0, "weight_decay": 0.01,
         "num_iters": 12, "batch_size": 40, "optimizer": "adamw", "shuffle": True,
         "schedule": "cosine", "dropout": 0.3, "augment": AUGMENTATIONS["affine+elastic"]},
        "87f8adef9feabb19d348df7dcd024e268719c5929e42e63425e3be0c0593459d",
        -36.910011291503906, 2.5781073570251465,
    ),
}  # fmt: skip


def _data(dtype: str) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1234)
    X = rng.random((300, 784)).astype(dtype)
    y = rng.integers(0, 10, 300)
    return X[:240], y[:240], X[240:], y[240:]


@pytest.mark.parametrize("case", CASES)
def test_training_is_bit_identical_to_the_pinned_run(case: str) -> None:
    net_args, train_args, digest, sum_W1, last_loss = CASES[case]
    net_args = dict(net_args)
    X, y, X_val, y_val = _data(net_args["dtype"])
    with threadpool_limits(1):
        net = TwoLayerNet(784, net_args.pop("hidden_size"), 10, **net_args)
        history = net.train(X, y, X_val, y_val, compile=False, **train_args)
    fingerprint = hashlib.sha256()
    for name in ("W1", "b1", "W2", "b2"):
        fingerprint.update(np.ascontiguousarray(net.params[name]).tobytes())
    fingerprint.update(json.dumps(history, sort_keys=True).encode())
    moved = (
        f"sum(W1) {float(np.sum(net.params['W1']))!r} (pinned {sum_W1!r}), "
        f"last loss {history['loss_history'][-1]!r} (pinned {last_loss!r})"
    )
    assert fingerprint.hexdigest() == digest, f"{case}: the numbers moved: {moved}"
