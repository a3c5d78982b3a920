"""The contenders of the benchmark, on any device: each trains and returns seconds.

A speed runner is ``run(X, y, H, batch, iterations) -> seconds`` for ``iterations``
steps of ``batch`` rows of a 784-H-10 network (learning rate 1e-3, reg 5e-6), with
the device done when it returns. ``bench.py`` (the CPU) and ``gpu.py`` (an NVIDIA
GPU) choose which to run; the time-to-accuracy functions race the fast recipe.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np

from xpnet import TwoLayerNet
from xpnet.metrics import accuracy
from xpnet.training import ComputeSettings, fit

LEARNING_RATE, REG = 1e-3, 5e-6
#: Time to accuracy checks the validation accuracy this often per epoch (time included).
CHECKS_PER_EPOCH = 4

Runner = Callable[[np.ndarray, np.ndarray, int, int, int], float]


@contextlib.contextmanager
def jax_precision(precision: str | None) -> Iterator[None]:
    """JAX's float32 matrix-product precision: "highest" (fp32) or "default" (TF32 on GPUs)."""
    if precision is None:
        yield
        return
    import jax

    with jax.default_matmul_precision(precision):
        yield


def synchronize(xp: ModuleType) -> None:
    """Wait for a GPU library's queued work (nothing to wait for with NumPy)."""
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def xpnet_runner(
    backend: str,
    dtype: str = "float32",
    device: Any = None,
    compile: bool | str = "auto",
    precision: str | None = None,
) -> Runner:
    """``TwoLayerNet.train`` with the data already on the device."""

    def run(X, y, H, batch, iterations):
        net = TwoLayerNet(784, H, 10, backend=backend, device=device, dtype=dtype, seed=0)
        X_dev, y_dev = net.backend.asarray(X.astype(dtype)), net.backend.asarray(y)
        with jax_precision(precision):
            start = time.perf_counter()
            net.train(
                X_dev, y_dev, X_dev[:batch], y_dev[:batch], learning_rate=LEARNING_RATE,
                learning_rate_decay=1.0, reg=REG, num_iters=iterations, batch_size=batch,
                compile=compile,
            )  # fmt: skip
            return time.perf_counter() - start  # train read its history: the device is done

    return run


def plain_loop_runner(xp: ModuleType, dtype: str = "float32") -> Runner:
    """The obvious loop a student writes for the lab, in NumPy or (``xp=cupy``) CuPy."""

    def run(X, y, H, batch, iterations):
        X, y = xp.asarray(X.astype(dtype)), xp.asarray(y)
        rng = xp.random.default_rng(0)
        W1 = (1e-4 * rng.standard_normal((784, H))).astype(dtype)
        b1 = xp.zeros(H, dtype)
        W2 = (1e-4 * rng.standard_normal((H, 10))).astype(dtype)
        b2 = xp.zeros(10, dtype)
        rows = xp.arange(batch)
        losses = []
        synchronize(xp)
        start = time.perf_counter()
        for _ in range(iterations):
            idx = rng.integers(0, X.shape[0], batch)
            X_batch, y_batch = X[idx], y[idx]
            hidden = xp.maximum(0, X_batch @ W1 + b1)
            scores = hidden @ W2 + b2
            scores -= scores.max(axis=1, keepdims=True)
            probs = xp.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
            loss = -xp.mean(xp.log(probs[rows, y_batch]))
            losses.append(loss + 0.5 * REG * (xp.sum(W1 * W1) + xp.sum(W2 * W2)))
            dscores = probs
            dscores[rows, y_batch] -= 1
            dscores /= batch
            dW2 = hidden.T @ dscores + REG * W2
            db2 = dscores.sum(axis=0)
            dhidden = dscores @ W2.T
            dhidden[hidden <= 0] = 0
            dW1 = X_batch.T @ dhidden + REG * W1
            db1 = dhidden.sum(axis=0)
            W1 -= LEARNING_RATE * dW1
            b1 -= LEARNING_RATE * db1
            W2 -= LEARNING_RATE * dW2
            b2 -= LEARNING_RATE * db2
        float(xp.stack(losses)[-1])  # the losses read back, as xpnet's history is
        return time.perf_counter() - start

    return run


def torch_model(H: int, device: str) -> tuple[Any, Any]:
    """``nn.Sequential`` of two ``Linear`` and a ReLU, and ``CrossEntropyLoss``."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, 10)
    ).to(device)
    return model, torch.nn.CrossEntropyLoss()


def torch_synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def pytorch_runner(device: str = "cpu") -> Runner:
    """PyTorch ``nn`` + ``optim.SGD``, eager, batch indices drawn on the device."""
    import torch

    def run(X, y, H, batch, iterations):
        X_t, y_t = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
        model, criterion = torch_model(H, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, weight_decay=REG)
        losses = []
        torch_synchronize(device)
        start = time.perf_counter()
        for _ in range(iterations):
            idx = torch.randint(0, X_t.shape[0], (batch,), device=device)
            optimizer.zero_grad()
            loss = criterion(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        torch.stack(losses).cpu()
        return time.perf_counter() - start

    return run


def sklearn_runner() -> Runner:
    """scikit-learn's ``MLPClassifier`` with the SGD solver, one epoch over the same rows."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run(X, y, H, batch, iterations):
        model = MLPClassifier(
            hidden_layer_sizes=(H,), solver="sgd", alpha=REG, batch_size=batch,
            learning_rate_init=LEARNING_RATE, momentum=0.0, max_iter=1, shuffle=True,
            random_state=0, tol=0.0, n_iter_no_change=10**9,
        )  # fmt: skip
        samples = batch * iterations
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X[:samples], y[:samples])
        return time.perf_counter() - start

    return run


def limit_runner(xp: ModuleType, dtype: str = "float32") -> Runner:
    """The step's five matrix products alone, into preallocated outputs: the BLAS ceiling."""

    def run(X, y, H, batch, iterations):
        rng = xp.random.default_rng(0)
        X_batch = xp.asarray(X[:batch].astype(dtype))
        W1 = rng.standard_normal((784, H)).astype(dtype)
        W2 = rng.standard_normal((H, 10)).astype(dtype)
        hidden, scores = xp.empty((batch, H), dtype), xp.empty((batch, 10), dtype)
        dW1, dW2, dhidden = xp.empty_like(W1), xp.empty_like(W2), xp.empty((batch, H), dtype)
        synchronize(xp)
        start = time.perf_counter()
        for _ in range(iterations):
            xp.matmul(X_batch, W1, out=hidden)
            xp.matmul(hidden, W2, out=scores)
            xp.matmul(hidden.T, scores, out=dW2)
            xp.matmul(scores, W2.T, out=dhidden)
            xp.matmul(X_batch.T, dhidden, out=dW1)
        synchronize(xp)
        return time.perf_counter() - start

    return run


# Time to accuracy: the fast recipe until the validation accuracy, checked every
# quarter epoch (the checks' own time included), first reaches the target.
# Each returns (seconds, epochs, accuracy), or (inf, nan, nan) if never reached.


def xpnet_time_to_accuracy(
    data, recipe, target, seed, backend="numpy", device=None, compile="auto", precision=None
):
    """xpnet, checking at the first progress call past each quarter epoch."""
    net = TwoLayerNet(
        784, recipe.hidden_size, 10, backend=backend, device=device, dtype="float32",
        seed=seed, init=recipe.init,
    )  # fmt: skip
    X_train, y_train, X_val, y_val = (net.backend.asarray(a) for a in data)
    quarter = X_train.shape[0] // recipe.batch_size / CHECKS_PER_EPOCH
    reached: list[tuple[float, float, float]] = []
    next_check = [quarter]

    def progress(it, loss, learning_rate):
        if it + 1 >= next_check[0] and not reached:
            next_check[0] += quarter
            found = float(accuracy(net.xp, y_val, net.predict(X_val)))
            if found >= target:
                epochs = (it + 1) / (CHECKS_PER_EPOCH * quarter)
                reached.append((time.perf_counter() - start, epochs, found))

    settings = recipe.settings(input_size=784, output_size=10, seed=seed, compile=compile,
                               compute=ComputeSettings(net.backend, dtype="float32"))  # fmt: skip

    def follow(params):  # the run's parameters so far, for the checks' predictions
        net.params = params

    with jax_precision(precision):
        start = time.perf_counter()
        fit(net.params, settings, X_train, y_train, X_val, y_val, rng=net.rng,
            progress=progress, on_chunk=follow)  # fmt: skip
    return reached[0] if reached else (math.inf, math.nan, math.nan)


def pytorch_time_to_accuracy(data, recipe, target, seed, device="cpu", graphed=False):
    """PyTorch ``nn`` + ``optim.SGD`` with He initialisation and the cosine schedule.

    ``graphed`` (CUDA only): a quarter epoch per CUDA graph replay; the learning rate
    is then a tensor the graph reads, set per step from a schedule tensor (one that
    requires grad, so that SGD reads it on the device rather than as a number).
    """
    import torch

    X_train, y_train, X_val, y_val = (torch.as_tensor(a, device=device) for a in data)
    model, criterion = torch_model(recipe.hidden_size, device)
    torch.manual_seed(seed)
    for layer in (model[0], model[2]):  # He initialisation, zero biases, as xpnet's
        torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        torch.nn.init.zeros_(layer.bias)
    per_epoch = X_train.shape[0] // recipe.batch_size
    quarter = per_epoch // CHECKS_PER_EPOCH
    schedule = [
        recipe.learning_rate * (1 + math.cos(math.pi * it / recipe.num_iters)) / 2
        for it in range(recipe.num_iters)
    ]

    def val_accuracy() -> float:
        with torch.no_grad():
            return float((model(X_val).argmax(1) == y_val).float().mean())

    def permutation():
        order = torch.randperm(X_train.shape[0], device=device)[: per_epoch * recipe.batch_size]
        return order.reshape(per_epoch, recipe.batch_size)

    start = time.perf_counter()
    if not graphed:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum,
            weight_decay=recipe.reg,
        )  # fmt: skip
        for it in range(recipe.num_iters):
            if it % per_epoch == 0:
                order = permutation()
            for group in optimizer.param_groups:
                group["lr"] = schedule[it]
            idx = order[it % per_epoch]
            optimizer.zero_grad()
            criterion(model(X_train[idx]), y_train[idx]).backward()
            optimizer.step()
            if (it + 1) % quarter == 0 and (found := val_accuracy()) >= target:
                return time.perf_counter() - start, (it + 1) / per_epoch, found
        return math.inf, math.nan, math.nan

    lr = torch.tensor(schedule[0], device=device, requires_grad=True)
    rates = torch.tensor(schedule + [0.0] * quarter, device=device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.reg,
        foreach=False,
    )  # fmt: skip
    for parameter in model.parameters():  # allocated now, not inside the graph's first step
        optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)
    step_index = torch.zeros((), dtype=torch.int64, device=device)
    offset = torch.zeros((), dtype=torch.int64, device=device)
    order = permutation()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up: cuBLAS, the allocator, the .grad buffers
        criterion(model(X_train[order[0]]), y_train[order[0]]).backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for k in range(quarter):
            with torch.no_grad():
                lr.copy_(rates[step_index])
            idx = order[(offset + k) % per_epoch]
            optimizer.zero_grad(set_to_none=False)
            criterion(model(X_train[idx]), y_train[idx]).backward()
            optimizer.step()
            step_index += 1
        offset += quarter
    for it in range(0, recipe.num_iters, quarter):
        if it and it % per_epoch < quarter:  # a new epoch: a fresh permutation
            order.copy_(permutation())
        graph.replay()
        if (found := val_accuracy()) >= target:
            return time.perf_counter() - start, (it + quarter) / per_epoch, found
    return math.inf, math.nan, math.nan


def time_to_accuracy_table(
    results: dict[str, list[tuple[float, float, float]]], digits: int
) -> list[str]:
    """Markdown rows of time-to-accuracy results: median seconds and epochs, each seed's time."""
    lines = [
        "| runner | median seconds | median epochs | seconds per seed |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, runs in results.items():
        seconds = [s for s, _, _ in runs]
        epochs = [e for _, e, _ in runs]
        lines.append(
            f"| {name} | {statistics.median(seconds):.{digits}f} | "
            f"{statistics.median(epochs):.2f} | "
            + ", ".join(f"{s:.{digits}f}" for s in seconds)
            + " |"
        )
    return lines
