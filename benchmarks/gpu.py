"""The GPU part of the benchmark: xpnet's GPU paths against CuPy and PyTorch, on an NVIDIA GPU.

``bench.py`` calls :func:`run` where a GPU exists (``bench.py --only gpu`` runs
this part alone, as ``backends/gpu_check.py`` does). Rows, float32, at three sizes,
each with the precision of its matrix products:

- xpnet ``train`` on CuPy (eager), torch CUDA (eager and CUDA graph) and JAX on the
  GPU (eager, and jit + scan in full float32 and in JAX's default TF32);
- a plain CuPy loop written the obvious way;
- PyTorch ``nn`` + ``optim.SGD``, eager, and 100 steps captured in one CUDA graph;
- the limit: the step's five matrix products alone, through CuPy (fp32) and torch (TF32).

the time to 0.98 validation accuracy with the fast recipe: xpnet's GPU paths
against PyTorch eager and graphed; and the steps per second of the ``best`` and
``best-augmented`` recipes (hidden 2048, batch 128, dropout, distortions: their
randomness drawn on the device), measured as ``training_randomness.py`` measures
them on the CPU. A row that fails is reported with its error, and
the run then exits non-zero.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable

import numpy as np
from runners import (
    LEARNING_RATE,
    REG,
    Runner,
    jax_precision,
    limit_runner,
    plain_loop_runner,
    pytorch_runner,
    pytorch_time_to_accuracy,
    time_to_accuracy_table,
    torch_model,
    xpnet_runner,
    xpnet_time_to_accuracy,
)
from training_randomness import measure

from xpnet.backend import resolve_backend

SIZES = {"small": (175, 100), "medium": (1024, 1024), "large": (4096, 8192)}
ITERATIONS = {"small": 3000, "medium": 2000, "large": 300}
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
        model, criterion = torch_model(H, device)
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


def runners(libraries: dict[str, bool]) -> dict[str, tuple[Runner, str]]:
    """Each row's runner and the precision of its matrix products."""
    rows: dict[str, tuple[Runner, str]] = {}
    if libraries["cupy"]:
        import cupy

        rows["xpnet cupy, eager"] = (xpnet_runner("cupy", device=0), "fp32")
        rows["plain CuPy loop"] = (plain_loop_runner(cupy), "fp32")
        rows["limit: five matmuls, CuPy"] = (limit_runner(cupy), "fp32")
    if libraries["torch"]:
        cuda = {"backend": "torch", "device": "cuda:0"}
        rows["xpnet torch cuda, eager"] = (xpnet_runner(**cuda, compile=False), "fp32")
        rows["xpnet torch cuda, CUDA graph"] = (xpnet_runner(**cuda, compile=True), "fp32")
        rows["PyTorch nn, eager"] = (pytorch_runner("cuda:0"), "fp32")
        rows[f"PyTorch nn, {GRAPH_STEPS} steps per CUDA graph"] = (pytorch_graphed_runner(), "fp32")
        rows["limit: five matmuls, torch TF32"] = (torch_tf32_limit_runner(), "TF32")
    if libraries["jax"]:
        gpu = {"backend": "jax", "device": "gpu:0"}
        rows["xpnet jax gpu, eager"] = (
            xpnet_runner(**gpu, compile=False, precision="highest"),
            "fp32",
        )
        rows["xpnet jax gpu, jit + scan"] = (
            xpnet_runner(**gpu, compile=True, precision="highest"),
            "fp32",
        )
        rows["xpnet jax gpu, jit + scan, TF32"] = (
            xpnet_runner(**gpu, compile=True, precision="default"),
            "TF32",
        )
    return rows


#: The recipes' GPU rows: name -> (backend, device, compile, JAX matmul precision).
RECIPE_PATHS = {
    "xpnet jax gpu, jit + scan": ("jax", "gpu:0", "highest"),
    "xpnet torch cuda, CUDA graph": ("torch", "cuda:0", None),
    "xpnet cupy, eager": ("cupy", 0, None),
}
RECIPE_STEPS = {"best": 3000, "best-augmented": 2000}
#: 300 epochs of best-augmented, in steps.
BEST_AUGMENTED_STEPS = 300 * (55_000 // 128)


def measure_recipes(repeats: int, errors: list[str]) -> dict[str, dict[str, float]]:
    """Steps per second of each recipe on each GPU path: the median of ``repeats``."""
    libraries = available()
    rates: dict[str, dict[str, float]] = {recipe: {} for recipe in RECIPE_STEPS}
    for recipe, steps in RECIPE_STEPS.items():
        for name, (backend, device, precision) in RECIPE_PATHS.items():
            if not libraries[backend]:
                continue
            try:
                with jax_precision(precision):
                    runs = [measure(recipe, 2048, backend, steps, device) for _ in range(repeats)]
                rates[recipe][name] = statistics.median(runs)
            except Exception as err:  # a broken row is reported, not fatal
                errors.append(f"{recipe}, {name}: {type(err).__name__}: {err}")
                traceback.print_exc()
                rates[recipe][name] = math.nan
            print(f"gpu {recipe}: {name}: {rates[recipe][name]:,.0f} steps/s", flush=True)
    return rates


def render_recipes(rates: dict[str, dict[str, float]]) -> list[str]:
    """The recipes' table and their GPU targets."""
    lines = [
        "The recipes, hidden 2048, batch 128, float32 (fp32 matrix products), steps per "
        "second after start-up, randomness drawn on the device:",
        "",
        "| path | `best` (steps/s) | `best-augmented` (steps/s) | 300 epochs of `best-augmented` |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in RECIPE_PATHS:
        best = rates["best"].get(name, math.nan)
        augmented = rates["best-augmented"].get(name, math.nan)
        minutes = BEST_AUGMENTED_STEPS / augmented / 60
        lines.append(f"| {name} | {best:,.0f} | {augmented:,.0f} | {minutes:.1f} min |")
    measured = [rate for rate in rates["best-augmented"].values() if not math.isnan(rate)]
    fastest = max(measured, default=math.nan)
    checks = [
        ("`best` on JAX jit (steps/s)", rates["best"].get("xpnet jax gpu, jit + scan", math.nan),
         5_000),
        ("`best` on torch CUDA graphs (steps/s)",
         rates["best"].get("xpnet torch cuda, CUDA graph", math.nan), 5_000),
        ("300 epochs of `best-augmented`, fastest path (s), at most",
         BEST_AUGMENTED_STEPS / fastest, 120),
    ]  # fmt: skip
    lines += ["", "| recipe target | measured | wanted | met |", "| --- | ---: | ---: | --- |"]
    for name, value, wanted in checks:
        met = value <= wanted if "at most" in name else value >= wanted
        lines.append(f"| {name} | {value:,.0f} | {wanted:,} | {'yes' if met else 'no'} |")
    return lines


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


def measure_time_to_accuracy(fast_rows, recipe, seeds, errors: list[str]) -> dict:
    libraries = available()
    contenders: dict[str, Callable] = {}
    if libraries["cupy"]:
        contenders["xpnet cupy, eager"] = lambda s: xpnet_time_to_accuracy(
            fast_rows, recipe, 0.98, s, "cupy", 0
        )
    if libraries["torch"]:
        contenders["xpnet torch cuda, CUDA graph"] = lambda s: xpnet_time_to_accuracy(
            fast_rows, recipe, 0.98, s, "torch", "cuda:0", compile=True
        )
        contenders["PyTorch nn, eager"] = lambda s: pytorch_time_to_accuracy(
            fast_rows, recipe, 0.98, s, device="cuda:0"
        )
        contenders["PyTorch nn, CUDA graph"] = lambda s: pytorch_time_to_accuracy(
            fast_rows, recipe, 0.98, s, device="cuda:0", graphed=True
        )
    if libraries["jax"]:
        contenders["xpnet jax gpu, jit + scan"] = lambda s: xpnet_time_to_accuracy(
            fast_rows, recipe, 0.98, s, "jax", "gpu:0", compile=True, precision="highest"
        )
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


def render(
    speed: dict, tta: dict, recipes: dict, device_name: str, date: str, errors: list[str]
) -> list[str]:
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
        *time_to_accuracy_table(tta, digits=3),
        "",
        *targets(rates, tta),
        "",
        *render_recipes(recipes),
        "",
    ]
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
