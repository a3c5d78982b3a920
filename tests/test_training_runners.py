"""The runners: JAX's compiled chunks take nothing from the host."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, to_numpy
from xpnet.augment import AUGMENTATIONS
from xpnet.training import Rates
from xpnet.training._runners import JaxScanRunner

RANDOM_SETTINGS = {"dropout": 0.3, "augment": AUGMENTATIONS["affine+elastic"], "shuffle": True}


def small_data(n=64):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)), rng.integers(0, 10, n)


@pytest.mark.backend("jax")
def test_a_compiled_chunk_takes_nothing_from_the_host():
    """JAX runs each chunk under a transfer guard that refuses every transfer from the
    host: a run with every kind of randomness completes, so its steps drew it on the
    device; the same chunk given one input from the host is refused."""
    pytest.importorskip("jax")
    X, y = small_data()
    net = TwoLayerNet(784, 16, 10, std=0.1, backend="jax", seed=3, dtype="float32")
    stats = net.train(X, y, None, None, num_iters=30, batch_size=8, **RANDOM_SETTINGS)
    assert net.last_training["path"] == JaxScanRunner.name
    assert len(stats["loss_history"]) == 30

    def step(state, data, inputs, lr):
        return inputs["step"] * lr

    rates = Rates(np.ones(2), net.backend.asarray(np.ones(2, dtype=np.float32)))
    runner = JaxScanRunner(net.backend, step)
    on_device = {"step": net.backend.asarray(np.arange(2, dtype=np.int32))}
    _, losses = runner({}, {}, on_device, rates)
    np.testing.assert_array_equal(to_numpy(losses), [0, 1])
    with pytest.raises(Exception, match="host-to-device"):
        runner({}, {}, {"step": np.arange(2, dtype=np.int32)}, rates)
