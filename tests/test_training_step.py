"""The training step: it takes the numbers drawn for it, and touches nothing on the host."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet, resolve_backend, to_numpy
from xpnet.augment import AUGMENTATIONS
from xpnet.functional import L2_WEIGHTS, one_hot
from xpnet.optim import make_optimizer
from xpnet.training import TrainStep, stream_keys
from xpnet.training._randomness import draw_noise


def small_data(n):
    rng = np.random.default_rng(0)
    return rng.random((n, 784)), rng.integers(0, 10, n)


def test_a_step_uses_the_numbers_drawn_ahead_for_it(backend):
    """Given its draws, a step takes them: with every hidden unit dropped, W1 and b1
    have no gradient (plain SGD leaves them as they were), while the step's own mask
    would have kept most units."""
    xp = backend.xp
    net = TwoLayerNet(784, 16, 10, std=0.1, backend=backend, seed=3)
    X, y = small_data(8)
    step = TrainStep(xp, make_optimizer("sgd", momentum=0.0, reg=0.0, weight_decay=0.0,
                                        decayed=frozenset()), 0.0, 0.3)  # fmt: skip
    data = {"X": net.backend.asarray(X, dtype=net.dtype),
            "T": one_hot(xp, net.backend.asarray(y), 10, net.dtype),
            **stream_keys(xp, 0, net.device)}  # fmt: skip
    counter = xp.asarray(0, dtype=xp.int32, device=net.device)
    own = draw_noise(xp, data, counter, 8, 16, dropout=0.3, augment=None)["keep"]
    assert 0 < float(xp.mean(xp.astype(own, net.dtype))) < 1
    params = {name: xp.asarray(p, copy=True) for name, p in net.params.items()}
    state = {"params": params, "optimizer": step.optimizer.init(xp, params)}
    inputs = {"batch": xp.arange(8, device=net.device), "step": counter,
              "keep": xp.zeros((8, 16), dtype=xp.bool, device=net.device)}  # fmt: skip
    step(state, data, inputs, 0.1)
    for name in ("W1", "b1"):
        np.testing.assert_array_equal(to_numpy(params[name]), to_numpy(net.params[name]))
    assert not np.array_equal(to_numpy(params["b2"]), to_numpy(net.params["b2"]))


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "sgd", "momentum": 0.0},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "adam", "dropout": 0.5},
        {"optimizer": "adamw", "augment": "affine+elastic"},
    ],
    ids=["sgd", "momentum", "adam-dropout", "adamw-augment"],
)
def test_the_step_touches_no_host_tensor_so_a_cuda_graph_can_capture_it(settings):
    """Every tensor the step reads or makes stays on the parameters' device: its
    random numbers (dropout masks, distortions) are drawn there, not on the host.

    A CUDA graph cannot capture a copy between the host and the GPU (a Python scalar
    turned into a CPU tensor, say). Run on torch's "meta" device, where no data
    exists, every operation of the step is recorded with the devices it touches.
    """
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class HostTensors(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten((args, kwargs, out))[0]:
                if isinstance(t, torch.Tensor) and t.device.type != "meta":
                    self.seen.append(f"{func}: {t.device}")
            return out

    meta = torch.device("meta")
    shapes = {"W1": (784, 8), "b1": (8,), "W2": (8, 3), "b2": (3,)}
    params = {name: torch.empty(shape, device=meta) for name, shape in shapes.items()}
    xp = resolve_backend("torch").xp
    optimizer = make_optimizer(
        settings["optimizer"], momentum=settings.get("momentum", 0.0), reg=1e-3,
        weight_decay=1e-3 if settings["optimizer"] == "adamw" else 0.0,
        decayed=frozenset(L2_WEIGHTS),
    )  # fmt: skip
    augment = AUGMENTATIONS[settings.get("augment", "none")]
    step = TrainStep(xp, optimizer, 1e-3, settings.get("dropout", 0.0), augment)
    state = {"params": params, "optimizer": optimizer.init(xp, params)}
    data = {"X": torch.empty((50, 784), device=meta), "T": torch.empty((50, 3), device=meta),
            "blank": torch.empty(784, device=meta)}  # fmt: skip
    if augment is not None:
        constants = augment.constants(xp, torch.float32, "cpu")  # made once, before capture
        data.update({name: torch.empty(c.shape, device=meta) for name, c in constants.items()})
    data.update(stream_keys(xp, 0, meta))  # the random streams' keys, made on the device
    inputs = {"batch": torch.zeros(10, dtype=torch.int64, device=meta),
              "step": torch.zeros((), dtype=torch.int32, device=meta)}  # fmt: skip

    with HostTensors() as control:  # the spy sees a host tensor where there is one
        _ = data["X"] + torch.tensor(1.0)
    assert control.seen

    with HostTensors() as spy:
        loss = step(state, data, inputs, torch.empty((), device=meta))
    assert loss.device == meta
    assert spy.seen == []
