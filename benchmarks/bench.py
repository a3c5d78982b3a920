"""Benchmark xpnet against its peers and against the machine's limit.

Run it as ``python benchmarks/bench.py`` (or ``nox -s bench``). In one process it
times, alternating and at the same sizes, dtype and iteration counts:

- xpnet on numpy (float32, float64), torch (float32) and JAX (float32, eager and
  compiled with jit + scan);
- a plain NumPy loop written the obvious way, the yardstick for the abstraction's cost;
- PyTorch: ``nn.Sequential`` of two ``Linear`` and a ReLU, ``CrossEntropyLoss``, ``SGD``;
- scikit-learn's ``MLPClassifier`` with the SGD solver, over the same number of samples;
- the limit: the step's five matrix products alone, into preallocated outputs.

It reports the median iterations per second of several repeats, the ratios, peak
memory of full-MNIST training, and the wall-clock time to 0.98 validation accuracy
with the fast recipe in xpnet and in PyTorch. Where an NVIDIA GPU exists, the GPU
part (``benchmarks/gpu.py``) adds its section. It writes ``benchmarks/RESULTS.md``,
replacing the sections it measured and keeping the others (a GPU section measured
elsewhere, the hand-written notes). ``--only cpu`` or ``--only gpu`` runs one part.

``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are unset for this process, as on a
user's machine: some environments set them to work around old OpenBLAS builds,
which slows a current NumPy about twofold (and PyTorch not at all).
"""

from __future__ import annotations

import os
import sys

from _blas_overrides import run_without_blas_overrides

run_without_blas_overrides()  # before NumPy loads

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402
from runners import (  # noqa: E402
    Runner,
    limit_runner,
    plain_loop_runner,
    pytorch_runner,
    pytorch_time_to_accuracy,
    sklearn_runner,
    time_to_accuracy_table,
    xpnet_runner,
    xpnet_time_to_accuracy,
)

from xpnet import TwoLayerNet  # noqa: E402
from xpnet.pipeline import prepare_data  # noqa: E402
from xpnet.recipes import FAST, LAB  # noqa: E402

SIZES = {"handout": (175, 100), "large": (1024, 1024)}  # hidden size, batch size
RESULTS = Path(__file__).with_name("RESULTS.md")
NOTES_HEADING = "## What was tried"
GPU_HEADING = "## GPU"


# Peak memory of a full-MNIST training run (one epoch of the lab's recipe).


def peak_training_memory(data, dtype):
    X_train, y_train, X_val, y_val = data
    net = TwoLayerNet(784, LAB.hidden_size, 10, dtype=dtype, seed=0)
    tracemalloc.start()
    try:
        net.train(
            X_train,
            y_train,
            X_val,
            y_val,
            num_iters=X_train.shape[0] // LAB.batch_size,
            batch_size=LAB.batch_size,
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def profile(lab_rows, y_train) -> str:
    """Where xpnet's time goes at the handout's size, float32: cProfile's top entries."""
    import cProfile
    import io
    import pstats

    X = lab_rows[0]
    net = TwoLayerNet(784, 175, 10, dtype="float32", seed=0)
    profiler = cProfile.Profile()
    profiler.enable()
    net.train(
        X, y_train, X[:100], y_train[:100], num_iters=1000, batch_size=100, learning_rate_decay=1.0
    )
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(12)
    body = text.getvalue()
    body = body[body.index("ncalls") :].rstrip()
    return (
        "\n## Where the time goes\n\ncProfile of 1000 iterations of xpnet numpy float32 at the "
        "handout's size (own time per function; the matrix products run inside "
        "`forward` and `cross_entropy`; cProfile's overhead inflates the small calls):\n\n"
        f"```text\n{body}\n```\n"
    )


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = [
        f"{info['internal_api']} {info.get('version')} ({info.get('architecture')}), "
        f"{info['num_threads']} threads, {info['prefix']}"
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    ]
    import torch

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "numpy": f"{np.__version__}; BLAS: {'; '.join(blas)}",
        "torch": f"{torch.__version__}, {torch.get_num_threads()} threads",
        "environment": (
            f"unset for this run: {os.environ['XPNET_BENCH_UNSET']}"
            if "XPNET_BENCH_UNSET" in os.environ
            else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set"
        ),
    }


def runners() -> dict[str, Runner]:
    return {
        "xpnet numpy float32": xpnet_runner("numpy", "float32"),
        "xpnet numpy float64": xpnet_runner("numpy", "float64"),
        "xpnet torch float32": xpnet_runner("torch", "float32"),
        "xpnet jax float32 eager": xpnet_runner("jax", "float32", compile=False),
        "xpnet jax float32 jit+scan": xpnet_runner("jax", "float32", compile=True),
        "plain NumPy float32": plain_loop_runner(np, "float32"),
        "plain NumPy float64": plain_loop_runner(np, "float64"),
        "PyTorch float32": pytorch_runner(),
        "scikit-learn float32": sklearn_runner(),
        "limit float32": limit_runner(np, "float32"),
        "limit float64": limit_runner(np, "float64"),
    }


def measure_cpu(args, info, lab_rows, fast_rows, y_train) -> str:
    iterations = {"handout": 1000, "large": 30}
    rates: dict[str, dict[str, float]] = {}
    for size, (H, batch) in SIZES.items():
        found = runners()
        times: dict[str, list[float]] = {name: [] for name in found}
        for run in found.values():  # warm-up: compilation, first touches, thread pools
            run(lab_rows[0], y_train, H, batch, iterations[size])
        for repeat in range(args.repeats):  # alternate the runners within each repeat
            for name, run in found.items():
                times[name].append(run(lab_rows[0], y_train, H, batch, iterations[size]))
            print(f"{size}: repeat {repeat + 1} of {args.repeats} done", flush=True)
        rates[size] = {name: iterations[size] / statistics.median(t) for name, t in times.items()}

    memory = {dtype: peak_training_memory(lab_rows, dtype) for dtype in ("float32", "float64")}

    seeds = range(5)
    tta: dict[str, list] = {"xpnet numpy float32": [], "PyTorch float32": []}
    xpnet_time_to_accuracy(fast_rows, FAST, 0.98, 99)  # warm-up runs, not counted
    pytorch_time_to_accuracy(fast_rows, FAST, 0.98, 99)
    for seed in seeds:  # alternate
        tta["xpnet numpy float32"].append(xpnet_time_to_accuracy(fast_rows, FAST, 0.98, seed))
        tta["PyTorch float32"].append(pytorch_time_to_accuracy(fast_rows, FAST, 0.98, seed))

    report = render(info, rates, memory, tta, args.repeats, iterations, lab_rows[0].nbytes)
    return report + profile(lab_rows, y_train)


def measure_gpu(args, fast_rows, lab_rows, y_train) -> tuple[str, bool]:
    """The GPU section and whether every row ran; empty where there is no GPU."""
    sys.path.insert(0, str(Path(__file__).parent))
    import gpu

    libraries = gpu.available()
    if not any(libraries.values()):
        print("no GPU library sees an NVIDIA GPU here: no GPU section measured")
        return "", True
    errors: list[str] = []
    speed = gpu.measure_speed(lab_rows[0], y_train, max(args.repeats // 2, 3), errors)
    tta = gpu.measure_time_to_accuracy(fast_rows, FAST, range(5), errors)
    recipes = gpu.measure_recipes(3, errors)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = gpu.render(speed, tta, recipes, gpu_name(), date, errors)
    return "\n".join(lines) + "\n", not errors


def gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0)
    except Exception:
        import cupy

        return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--only", choices=["cpu", "gpu"], help="run one part, keep the other")
    args = parser.parse_args()

    info = machine()
    print(info["environment"])
    lab = prepare_data(LAB.preprocessing)  # the data as `xpnet train` prepares it
    fast = prepare_data(FAST.preprocessing)
    y_train = lab.y_train
    lab_rows = (lab.X_train, lab.y_train, lab.X_val, lab.y_val)
    fast_rows = (fast.X_train, fast.y_train, fast.X_val, fast.y_val)

    old = args.output.read_text() if args.output.exists() else ""
    cpu_part, gpu_part, notes = split_results(old)
    complete = True
    if args.only != "gpu":
        cpu_part = measure_cpu(args, info, lab_rows, fast_rows, y_train)
    if args.only != "cpu":
        measured, complete = measure_gpu(args, fast_rows, lab_rows, y_train)
        gpu_part = measured or gpu_part
    report = cpu_part.rstrip() + "\n" + ("\n" + gpu_part.rstrip() + "\n" if gpu_part else "")
    print(report)
    from xpnet._atomic import atomic_write

    with atomic_write(args.output, "w") as f:
        f.write(report + ("\n" + notes if notes else ""))
    print(f"wrote {args.output}")
    return 0 if complete else 1


def split_results(text: str) -> tuple[str, str, str]:
    """RESULTS.md as its CPU part, its GPU section and the hand-written notes."""
    notes = text[text.index(NOTES_HEADING) :] if NOTES_HEADING in text else ""
    body = text[: len(text) - len(notes)]
    if GPU_HEADING in body:
        at = body.index(GPU_HEADING)
        return body[:at], body[at:], notes
    return body, "", notes


def render(info, rates, memory, tta, repeats, iterations, data_bytes) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/bench.py` (`nox -s bench`); every figure below comes",
        "from one run of it, on the machine described here.",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        "",
        "## Training speed",
        "",
        f"Iterations per second, the median of {repeats} repeats, the runners alternating "
        "within each repeat. One iteration: sample a batch with replacement, forward, "
        "backward, SGD update (learning rate 1e-3, reg 5e-6). Real MNIST rows "
        "(784 features, mean image subtracted).",
        "",
    ]
    for size, (H, batch) in SIZES.items():
        r = rates[size]
        lines += [
            f"### {size}: hidden {H}, batch {batch}, {iterations[size]} iterations a repeat",
            "",
            "| runner | it/s |",
            "| --- | ---: |",
            *[f"| {name} | {rate:,.1f} |" for name, rate in r.items()],
            "",
            "| ratio | value |",
            "| --- | ---: |",
        ]
        for dtype in ("float32", "float64"):
            x = r[f"xpnet numpy {dtype}"]
            lines.append(
                f"| xpnet numpy / plain NumPy, {dtype} | {x / r[f'plain NumPy {dtype}']:.2f} |"
            )
            limit = r[f"limit {dtype}"]
            lines.append(
                f"| xpnet numpy / limit (fraction of the matmul limit), {dtype} | {x / limit:.2f} |"
            )
        x, torch_rate = r["xpnet numpy float32"], r["PyTorch float32"]
        lines += [
            f"| xpnet numpy / PyTorch, float32 | {x / r['PyTorch float32']:.2f} |",
            f"| xpnet numpy / scikit-learn, float32 | {x / r['scikit-learn float32']:.2f} |",
            f"| xpnet torch / PyTorch, float32 | {r['xpnet torch float32'] / torch_rate:.2f} |",
            f"| xpnet jax jit+scan / xpnet jax eager, float32 | "
            f"{r['xpnet jax float32 jit+scan'] / r['xpnet jax float32 eager']:.2f} |",
            "",
        ]
    lines += [
        "## Peak memory",
        "",
        f"tracemalloc's peak during one epoch of the lab's recipe on the full training set "
        f"(the rows given as float32: {data_bytes / 2**20:.0f} MiB).",
        "",
        "| net dtype | peak |",
        "| --- | ---: |",
        *[f"| {dtype} | {peak / 2**20:.0f} MiB |" for dtype, peak in memory.items()],
        "",
        "## Time to 0.98 validation accuracy",
        "",
        "The fast recipe (`xpnet train --recipe fast`): inputs scaled to 0..1 and centred, "
        "hidden 128, He initialisation, momentum 0.9, learning rate 0.3 with a cosine "
        "schedule over 3 shuffled epochs of batch 128, reg 1e-4; the same in PyTorch. "
        "Validation accuracy checked every quarter epoch, the checks' time included. "
        "Seeds 0-4, alternating.",
        "",
        *time_to_accuracy_table(tta, digits=2),
    ]
    x, t = (statistics.median([s for s, _, _ in tta[k]]) for k in tta)
    lines += ["", f"PyTorch time / xpnet time: {t / x:.2f}", ""]
    lines += targets(rates, x, t)
    return "\n".join(lines)


def targets(rates, xpnet_seconds, pytorch_seconds) -> list[str]:
    """The performance targets, each with the measured figure and whether it is met."""
    hand = rates["handout"]
    checks = [
        (
            "xpnet numpy float32 / PyTorch, handout",
            hand["xpnet numpy float32"] / hand["PyTorch float32"],
            1.5,
        )
    ]
    for size, wanted in {"handout": 0.7, "large": 0.9}.items():
        for dtype in ("float32", "float64"):
            xpnet, limit = rates[size][f"xpnet numpy {dtype}"], rates[size][f"limit {dtype}"]
            checks.append((f"fraction of the matmul limit, {size}, {dtype}", xpnet / limit, wanted))
    for size in SIZES:
        for dtype in ("float32", "float64"):
            xpnet, plain = rates[size][f"xpnet numpy {dtype}"], rates[size][f"plain NumPy {dtype}"]
            checks.append((f"xpnet numpy / plain NumPy, {size}, {dtype}", xpnet / plain, 1.0))
    checks += [
        (
            "xpnet jax jit+scan / xpnet jax eager, handout",
            hand["xpnet jax float32 jit+scan"] / hand["xpnet jax float32 eager"],
            1.5,
        ),
        *[
            (
                f"xpnet torch / PyTorch (CPU), {size}",
                rates[size]["xpnet torch float32"] / rates[size]["PyTorch float32"],
                1.0,
            )
            for size in SIZES
        ],
        ("time to 0.98 (s), at most", xpnet_seconds, 1.0),
        ("PyTorch time / xpnet time to 0.98", pytorch_seconds / xpnet_seconds, 1.5),
    ]
    lines = [
        "## Targets",
        "",
        "| target | measured | wanted | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, value, wanted in checks:
        met = value <= wanted if "at most" in name else value >= wanted
        lines.append(f"| {name} | {value:.2f} | {wanted:.2f} | {'yes' if met else 'no'} |")
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
