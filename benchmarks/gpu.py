"""The GPU part of the benchmark: xpnet's GPU paths against CuPy and PyTorch, on an NVIDIA GPU.

``bench.py`` calls :func:`run` where a GPU exists (``bench.py --only gpu`` runs
this part alone, as ``backends/gpu_check.py`` does). Rows, float32, at three sizes,
each with the precision of its matrix products:

- xpnet ``train`` on CuPy (eager), torch CUDA (eager and CUDA graph) and JAX on the
  GPU (eager, and jit + scan in full float32 and in JAX's default TF32);
- a plain CuPy loop written the obvious way;
- PyTorch ``nn`` + ``optim.SGD``, eager, and 100 steps captured in one CUDA graph;
- the limit: the step's five matrix products alone, through CuPy (fp32) and torch (TF32).

and the time to 0.98 validation accuracy with the fast recipe: xpnet's GPU paths
against PyTorch eager and graphed. A row that fails is reported with its error, and
the run then exits non-zero.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xpnet import TwoLayerNet
from xpnet.backend import resolve_backend
from xpnet.metrics import accuracy

SIZES = {"small": (175, 100), "medium": (1024, 1024), "large": (4096, 8192)}
ITERATIONS = {"small": 3000, "medium": 2000, "large": 300}
LEARNING_RATE, REG = 1e-3, 5e-6
GRAPH_STEPS = 100
FP32_XPNET_ROWS = ("xpnet cupy, eager", "xpnet torch cuda, CUDA graph", "xpnet jax gpu, jit + scan")


def available() -> dict[str, bool]:
    """Which GPU libraries work here."""
    found = {}
    for name, device in (("cupy", None), ("torch", "cuda:0"), ("jax", "gpu:0")):
        try:
            resolve_backend(name, device)
            found[name] = True
        except (ImportError, RuntimeError, ValueError):
            found[name] = False
    return found


@contextlib.contextmanager
def jax_precision(precision: str) -> Iterator[None]:
    """JAX's float32 matrix-product precision: "highest" (fp32) or "default" (TF32 on GPUs)."""
    import jax

    with jax.default_matmul_precision(precision):
        yield


def synchronize(name: str) -> None:
    if name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    elif name == "torch":
        import torch

        torch.cuda.synchronize()


# Runners: run(X, y, H, batch, iterations) -> seconds, with X and y already on the device.


def xpnet_runner(backend: str, device: Any, compile: Any, precision: str | None = None):
    def run(X, y, H, batch, iterations):
        net = TwoLayerNet(784, H, 10, backend=backend, device=device, dtype="float32", seed=0)
        X_dev, y_dev = net.backend.asarray(X), net.backend.asarray(y)
        context = jax_precision(precision) if precision else contextlib.nullcontext()
        with context:
            start = time.perf_counter()
            net.train(
                X_dev, y_dev, X_dev[:batch], y_dev[:batch], learning_rate=LEARNING_RATE,
                learning_rate_decay=1.0, reg=REG, num_iters=iterations, batch_size=batch,
                compile=compile,
            )  # fmt: skip
            return time.perf_counter() - start  # train read its history: the device is done

    return run


def plain_cupy_runner():
    """The obvious CuPy loop, the lab's NumPy code with ``cp`` for ``np``."""
    import cupy as cp

    def run(X, y, H, batch, iterations):
        X, y = cp.asarray(X), cp.asarray(y)
        rng = cp.random.default_rng(0)
        W1 = (1e-4 * rng.standard_normal((784, H))).astype(cp.float32)
        b1 = cp.zeros(H, cp.float32)
        W2 = (1e-4 * rng.standard_normal((H, 10))).astype(cp.float32)
        b2 = cp.zeros(10, cp.float32)
        rows = cp.arange(batch)
        losses = []
        synchronize("cupy")
        start = time.perf_counter()
        for _ in range(iterations):
            idx = rng.integers(0, X.shape[0], batch)
            X_batch, y_batch = X[idx], y[idx]
            hidden = cp.maximum(0, X_batch @ W1 + b1)
            scores = hidden @ W2 + b2
            scores -= scores.max(axis=1, keepdims=True)
            probs = cp.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
            loss = -cp.mean(cp.log(probs[rows, y_batch]))
            losses.append(loss + 0.5 * REG * (cp.sum(W1 * W1) + cp.sum(W2 * W2)))
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
        cp.stack(losses).get()
        return time.perf_counter() - start

    return run


def _torch_model(H: int, device: str):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, 10)
    ).to(device)
    return model, torch.nn.CrossEntropyLoss()


def pytorch_eager_runner(device: str = "cuda:0"):
    import torch

    def run(X, y, H, batch, iterations):
        X_t, y_t = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
        model, criterion = _torch_model(H, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, weight_decay=REG)
        losses = []
        torch.cuda.synchronize()
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


def _graphed_steps(model, criterion, optimizer, X_t, y_t, batch, steps, device):
    """Capture ``steps`` training steps of a PyTorch model in one CUDA graph.

    Batch indices are drawn on the device inside the graph. Returns the graph and the
    (steps,) tensor its replays fill with the losses.
    """
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm up: cuBLAS, the allocator, the .grad buffers
            optimizer.zero_grad(set_to_none=False)
            idx = torch.randint(0, X_t.shape[0], (batch,), device=device)
            criterion(model(X_t[idx]), y_t[idx]).backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        losses = []
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=False)
            idx = torch.randint(0, X_t.shape[0], (batch,), device=device)
            loss = criterion(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        static_losses = torch.stack(losses)
    return graph, static_losses


def pytorch_graphed_runner(device: str = "cuda:0"):
    import torch

    def run(X, y, H, batch, iterations):
        X_t, y_t = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
        model, criterion = _torch_model(H, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, weight_decay=REG)
        graph, static_losses = _graphed_steps(
            model, criterion, optimizer, X_t, y_t, batch, GRAPH_STEPS, device
        )
        losses = []
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(math.ceil(iterations / GRAPH_STEPS)):
            graph.replay()
            losses.append(static_losses.clone())
        torch.cat(losses).cpu()
        return time.perf_counter() - start

    return run


def cupy_limit_runner():
    """The step's five matrix products alone, fp32, into preallocated outputs."""
    import cupy as cp

    def run(X, y, H, batch, iterations):
        rng = cp.random.default_rng(0)
        X_batch = cp.asarray(X[:batch])
        W1 = rng.standard_normal((784, H), dtype=cp.float32)
        W2 = rng.standard_normal((H, 10), dtype=cp.float32)
        hidden, scores = cp.empty((batch, H), cp.float32), cp.empty((batch, 10), cp.float32)
        dW1, dW2 = cp.empty_like(W1), cp.empty_like(W2)
        dhidden = cp.empty((batch, H), cp.float32)
        synchronize("cupy")
        start = time.perf_counter()
        for _ in range(iterations):
            cp.matmul(X_batch, W1, out=hidden)
            cp.matmul(hidden, W2, out=scores)
            cp.matmul(hidden.T, scores, out=dW2)
            cp.matmul(scores, W2.T, out=dhidden)
            cp.matmul(X_batch.T, dhidden, out=dW1)
        synchronize("cupy")
        return time.perf_counter() - start

    return run


def torch_tf32_limit_runner(device: str = "cuda:0"):
    """The five matrix products through torch with TF32 allowed: the TF32 ceiling."""
    import torch

    def run(X, y, H, batch, iterations):
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            X_batch = torch.as_tensor(X[:batch], device=device)
            W1 = torch.randn(784, H, device=device)
            W2 = torch.randn(H, 10, device=device)
            hidden = torch.empty(batch, H, device=device)
            scores = torch.empty(batch, 10, device=device)
            dW1, dW2, dhidden = torch.empty_like(W1), torch.empty_like(W2), torch.empty_like(hidden)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(iterations):
                torch.matmul(X_batch, W1, out=hidden)
                torch.matmul(hidden, W2, out=scores)
                torch.matmul(hidden.T, scores, out=dW2)
                torch.matmul(scores, W2.T, out=dhidden)
                torch.matmul(X_batch.T, dhidden, out=dW1)
            torch.cuda.synchronize()
            return time.perf_counter() - start
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous

    return run


def runners(libraries: dict[str, bool]) -> dict[str, tuple[Callable, str]]:
    """Each row's runner and the precision of its matrix products."""
    rows: dict[str, tuple[Callable, str]] = {}
    if libraries["cupy"]:
        rows["xpnet cupy, eager"] = (xpnet_runner("cupy", 0, "auto"), "fp32")
        rows["plain CuPy loop"] = (plain_cupy_runner(), "fp32")
        rows["limit: five matmuls, CuPy"] = (cupy_limit_runner(), "fp32")
    if libraries["torch"]:
        rows["xpnet torch cuda, eager"] = (xpnet_runner("torch", "cuda:0", False), "fp32")
        rows["xpnet torch cuda, CUDA graph"] = (xpnet_runner("torch", "cuda:0", True), "fp32")
        rows["PyTorch nn, eager"] = (pytorch_eager_runner(), "fp32")
        rows[f"PyTorch nn, {GRAPH_STEPS} steps per CUDA graph"] = (pytorch_graphed_runner(), "fp32")
        rows["limit: five matmuls, torch TF32"] = (torch_tf32_limit_runner(), "TF32")
    if libraries["jax"]:
        rows["xpnet jax gpu, eager"] = (xpnet_runner("jax", "gpu:0", False, "highest"), "fp32")
        rows["xpnet jax gpu, jit + scan"] = (xpnet_runner("jax", "gpu:0", True, "highest"), "fp32")
        rows["xpnet jax gpu, jit + scan, TF32"] = (
            xpnet_runner("jax", "gpu:0", True, "default"),
            "TF32",
        )
    return rows


def measure_speed(X: np.ndarray, y: np.ndarray, repeats: int, errors: list[str]) -> dict:
    """Iterations per second of each row at each size: the median of ``repeats``."""
    rows = runners(available())
    rates: dict[str, dict[str, float]] = {}
    for size, (H, batch) in SIZES.items():
        iterations = ITERATIONS[size]
        rates[size] = {}
        for name, (run, _) in rows.items():
            try:
                run(X, y, H, batch, iterations)  # warm-up: compiles, captures, allocates
                seconds = [run(X, y, H, batch, iterations) for _ in range(repeats)]
                rates[size][name] = iterations / statistics.median(seconds)
            except Exception as err:  # a broken row is reported, not fatal
                errors.append(f"{name}, {size}: {type(err).__name__}: {err}")
                traceback.print_exc()
                rates[size][name] = math.nan
            print(f"gpu {size}: {name}: {rates[size][name]:,.0f} it/s", flush=True)
    return {"rates": rates, "precision": {name: p for name, (_, p) in rows.items()}}


# Time to 0.98 validation accuracy, the fast recipe.


def xpnet_time_to_accuracy(data, recipe, target, seed, backend, device, compile):
    X_train, y_train, X_val, y_val = data
    net = TwoLayerNet(
        784, recipe.hidden_size, 10, backend=backend, device=device, dtype="float32",
        seed=seed, init=recipe.init,
    )  # fmt: skip
    X_train, y_train, X_val, y_val = (net.backend.asarray(a) for a in data)
    quarter = X_train.shape[0] // recipe.batch_size / 4
    reached: list[tuple[float, float, float]] = []
    next_check = [quarter]

    def progress(it, loss, learning_rate):
        if it + 1 >= next_check[0] and not reached:
            next_check[0] += quarter
            acc = float(accuracy(y_val, net.predict(X_val)))
            if acc >= target:
                reached.append((time.perf_counter() - start, (it + 1) / (4 * quarter), acc))

    start = time.perf_counter()
    net.train(
        X_train, y_train, X_val, y_val, progress=progress, compile=compile,
        **recipe.train_settings(),
    )  # fmt: skip
    return reached[0] if reached else (math.inf, math.nan, math.nan)


def pytorch_time_to_accuracy(data, recipe, target, seed, graphed, device="cuda:0"):
    """The fast recipe in PyTorch; ``graphed``: a quarter epoch per CUDA graph replay.

    In the graphed form the learning rate is a tensor on the device that the graph
    reads, set per step from a schedule tensor, so the cosine schedule is kept.
    """
    import torch

    X_train, y_train, X_val, y_val = (torch.as_tensor(a, device=device) for a in data)
    model, criterion = _torch_model(recipe.hidden_size, device)
    torch.manual_seed(seed)
    for layer in (model[0], model[2]):
        torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        torch.nn.init.zeros_(layer.bias)
    per_epoch = X_train.shape[0] // recipe.batch_size
    quarter = per_epoch // 4
    schedule = [
        recipe.learning_rate * (1 + math.cos(math.pi * it / recipe.num_iters)) / 2
        for it in range(recipe.num_iters)
    ]

    def val_accuracy():
        with torch.no_grad():
            return float((model(X_val).argmax(1) == y_val).float().mean())

    start = time.perf_counter()
    if not graphed:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum,
            weight_decay=recipe.reg,
        )  # fmt: skip
        order = None
        for it in range(recipe.num_iters):
            if it % per_epoch == 0:
                order = torch.randperm(X_train.shape[0], device=device)
            for group in optimizer.param_groups:
                group["lr"] = schedule[it]
            k = it % per_epoch
            idx = order[k * recipe.batch_size : (k + 1) * recipe.batch_size]
            optimizer.zero_grad()
            criterion(model(X_train[idx]), y_train[idx]).backward()
            optimizer.step()
            if (it + 1) % quarter == 0 and val_accuracy() >= target:
                return time.perf_counter() - start, (it + 1) / per_epoch, val_accuracy()
        return math.inf, math.nan, math.nan

    # Graphed: the learning rate as a tensor requiring grad makes SGD use addcmul_,
    # which reads it on the device instead of as a Python number.
    lr = torch.tensor(schedule[0], device=device, requires_grad=True)
    rates = torch.tensor(schedule + [0.0] * quarter, device=device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=recipe.momentum, weight_decay=recipe.reg,
        foreach=False,
    )  # fmt: skip
    for parameter in model.parameters():  # allocated now, not inside the graph's first step
        optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)
    step_index = torch.zeros((), dtype=torch.int64, device=device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        optimizer.zero_grad(set_to_none=False)
        idx = torch.randint(0, X_train.shape[0], (recipe.batch_size,), device=device)
        criterion(model(X_train[idx]), y_train[idx]).backward()
        optimizer.zero_grad(set_to_none=False)
    torch.cuda.current_stream().wait_stream(side)
    order = torch.randperm(X_train.shape[0], device=device)[: per_epoch * recipe.batch_size]
    order = order.reshape(per_epoch, recipe.batch_size)
    offset = torch.zeros((), dtype=torch.int64, device=device)
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
            order.copy_(
                torch.randperm(X_train.shape[0], device=device)[
                    : per_epoch * recipe.batch_size
                ].reshape(per_epoch, recipe.batch_size)
            )
        graph.replay()
        if val_accuracy() >= target:
            return time.perf_counter() - start, (it + quarter) / per_epoch, val_accuracy()
    return math.inf, math.nan, math.nan


def measure_time_to_accuracy(fast_rows, recipe, seeds, errors: list[str]) -> dict:
    libraries = available()
    contenders: dict[str, Callable] = {}
    if libraries["cupy"]:
        contenders["xpnet cupy, eager"] = lambda s: xpnet_time_to_accuracy(
            fast_rows, recipe, 0.98, s, "cupy", 0, "auto"
        )
    if libraries["torch"]:
        contenders["xpnet torch cuda, CUDA graph"] = lambda s: xpnet_time_to_accuracy(
            fast_rows, recipe, 0.98, s, "torch", "cuda:0", True
        )
        contenders["PyTorch nn, eager"] = lambda s: pytorch_time_to_accuracy(
            fast_rows, recipe, 0.98, s, graphed=False
        )
        contenders["PyTorch nn, CUDA graph"] = lambda s: pytorch_time_to_accuracy(
            fast_rows, recipe, 0.98, s, graphed=True
        )
    if libraries["jax"]:

        def jax_run(s):
            with jax_precision("highest"):
                return xpnet_time_to_accuracy(fast_rows, recipe, 0.98, s, "jax", "gpu:0", True)

        contenders["xpnet jax gpu, jit + scan"] = jax_run
    results: dict[str, list] = {name: [] for name in contenders}
    for name, run in contenders.items():
        try:
            run(99)  # warm-up, not counted
        except Exception as err:
            errors.append(f"time to 0.98, {name}: {type(err).__name__}: {err}")
            traceback.print_exc()
            results.pop(name)
    for seed in seeds:
        for name, run in contenders.items():
            if name in results:
                results[name].append(run(seed))
    return results


def render(speed: dict, tta: dict, device_name: str, date: str, errors: list[str]) -> list[str]:
    """The GPU section of RESULTS.md."""
    rates, precision = speed["rates"], speed["precision"]
    lines = [
        "## GPU",
        "",
        f"One {device_name}, {date}, float32. Iterations per second, the median of the "
        "repeats after a warm-up run (compilation and graph capture happen there). "
        "The data is on the device; each row says the precision of its matrix products "
        "(fp32: full float32; TF32: tensor-float 32).",
        "",
        "| runner | precision | "
        + " | ".join(f"hidden {H}, batch {B}" for H, B in SIZES.values())
        + " |",
        "| --- | --- | " + " | ".join("---:" for _ in SIZES) + " |",
    ]
    for name in precision:
        cells = [f"{rates[size].get(name, math.nan):,.0f}" for size in SIZES]
        lines.append(f"| {name} | {precision[name]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Time to 0.98 validation accuracy, the fast recipe, seeds 0-4 (median):",
        "",
        "| runner | median seconds | median epochs | seconds per seed |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, results in tta.items():
        seconds = [s for s, _, _ in results]
        epochs = [e for _, e, _ in results]
        lines.append(
            f"| {name} | {statistics.median(seconds):.3f} | {statistics.median(epochs):.2f} | "
            + ", ".join(f"{s:.3f}" for s in seconds)
            + " |"
        )
    lines += ["", *targets(rates, tta), ""]
    if errors:
        lines += ["Rows that failed:", "", *[f"- {e}" for e in errors], ""]
    return lines


def targets(rates: dict, tta: dict) -> list[str]:
    small, large = rates["small"], rates["large"]

    def get(table, name):
        return table.get(name, math.nan)

    fastest = min(
        (statistics.median([s for s, _, _ in r]) for n, r in tta.items() if n.startswith("xpnet")),
        default=math.nan,
    )
    eager_runs = tta.get("PyTorch nn, eager", [(math.nan, math.nan, math.nan)])
    eager_torch = statistics.median([s for s, _, _ in eager_runs])
    checks = [
        ("JAX compiled, small (it/s)", get(small, "xpnet jax gpu, jit + scan"), 25_000),
        ("torch CUDA graph, small (it/s)", get(small, "xpnet torch cuda, CUDA graph"), 9_000),
        (
            "xpnet torch CUDA graph / PyTorch CUDA graph, small",
            get(small, "xpnet torch cuda, CUDA graph")
            / get(small, f"PyTorch nn, {GRAPH_STEPS} steps per CUDA graph"),
            1.4,
        ),
        (
            "xpnet cupy / plain CuPy loop, small",
            get(small, "xpnet cupy, eager") / get(small, "plain CuPy loop"),
            1.3,
        ),
        ("torch eager, small (it/s)", get(small, "xpnet torch cuda, eager"), 2_500),
        (
            "best fp32 xpnet / fp32 matmul limit, large",
            max(get(large, name) for name in FP32_XPNET_ROWS)
            / get(large, "limit: five matmuls, CuPy"),
            0.9,
        ),
        ("time to 0.98 on the GPU, fastest xpnet path (s), at most", fastest, 0.1),
        ("PyTorch eager time / xpnet time to 0.98", eager_torch / fastest, 5.0),
    ]
    lines = ["| GPU target | measured | wanted | met |", "| --- | ---: | ---: | --- |"]
    for name, value, wanted in checks:
        met = value <= wanted if "at most" in name else value >= wanted
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        lines.append(f"| {name} | {shown} | {wanted:,} | {'yes' if met else 'no'} |")
    return lines
