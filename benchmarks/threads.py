"""Threads by size class: xpnet's steps per second with the BLAS's one thread, its two
threads and xpnet's default choice, side by side, on the machine as it is and with every
core kept busy.

Run it as ``python benchmarks/threads.py``. In one process, at several sizes of the
training step (a batch of B rows by a 784 x H first layer) and of a test-set prediction,
float32 and float64 on NumPy (``--torch`` adds torch float32), it times
``TwoLayerNet.train`` with ``threads=1`` and ``threads=2`` in the BLAS's own threads (xpnet's
halves turned off: :data:`xpnet.backend.SPLIT_UP_TO` set to 0 for them) and the default
(``threads=None``: :data:`xpnet.backend.THREADS_BY_SIZE`, its products in halves on two
threads from :data:`~xpnet.backend.SPLIT_FROM` to :data:`~xpnet.backend.SPLIT_UP_TO`), in
turn within each repeat
(the order rotating from repeat to repeat, a pause before each), and reports the
medians. It does so twice: on the machine as quiet as it gets (the cores' worth of CPU
other processes take during each repeat is measured from ``/proc/stat`` and reported; a
repeat during which they took ``--quiet`` cores or more is measured again, after a
quieter second), and with a busy loop per core, started and stopped here, as on a laptop
with a browser open or a machine shared with other work.

``--against DIR`` then times ``xpnet train`` (``--recipe lab --num-iters 2000`` unless
``--train-args`` says otherwise) from this checkout and from the xpnet in ``DIR`` (run with
this interpreter, ``DIR`` on ``PYTHONPATH``), in turn, as the machine is and busy: the
whole command's wall time, start-up and data reading included.

``--write`` puts what it measured in ``benchmarks/THREADS.md``, keeping the sections it
did not measure (and ``## Reading it``, written by hand). ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` are unset for this process (and the commands it starts), as on a
user's machine: some environments set them to work around old OpenBLAS builds, which
slows a current NumPy.
"""

from __future__ import annotations

import os
import re
import sys

from _blas_overrides import run_without_blas_overrides

run_without_blas_overrides()  # before NumPy loads

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import threadpoolctl  # noqa: E402

import xpnet.backend._threads as _threads  # noqa: E402
from xpnet import TwoLayerNet  # noqa: E402
from xpnet.backend import THREADS_BY_SIZE, product_size, resolve_threads, using_threads  # noqa: E402

REPORT = Path(__file__).with_name("THREADS.md")
NOTES_HEADING = "## Reading it"
D, C = 784, 10

#: (what it is, rows, hidden size, "train" or "predict").
SIZES = [
    ("batch 40, hidden 32 (the tests' size)", 40, 32, "train"),
    ("the lab's first net (batch 200, hidden 50)", 200, 50, "train"),
    ("`lab` (batch 100, hidden 175)", 100, 175, "train"),
    ("batch 128, hidden 512", 128, 512, "train"),
    ("`best` (batch 128, hidden 2048)", 128, 2048, "train"),
    ("batch 512, hidden 1024", 512, 1024, "train"),
    ("batch 1024, hidden 1024", 1024, 1024, "train"),
    ("predict 10,000 rows, hidden 175", 10_000, 175, "predict"),
]
CHOICES: list[int | None] = [1, 2, None]  # in the BLAS's threads; None: xpnet's default
#: Seconds of rest before each measure: OpenBLAS's idle threads spin for a while after
#: a threaded product, and would take CPU from the next measure.
PAUSE = 0.2


# The machine's load: other processes' CPU time, from /proc/stat less this process's own.


def _cpu_seconds() -> float:
    """CPU time spent by every process on the machine, in seconds (Linux)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU time of this process and of its children that have ended (the commands it
    timed; the busy loops end after the measure)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@contextlib.contextmanager
def others_load() -> Iterator[dict[str, float]]:
    """Measure the cores' worth of CPU that other processes (the busy loops included) use
    during the body: ``found["cores"]``, averaged over its wall time."""
    found: dict[str, float] = {}
    start, own, wall = _cpu_seconds(), _own_seconds(), time.perf_counter()
    try:
        yield found
    finally:
        elapsed = time.perf_counter() - wall
        others = (_cpu_seconds() - start) - (_own_seconds() - own)
        found["cores"] = max(others, 0.0) / elapsed if elapsed > 0 else 0.0
        found["seconds"] = elapsed


@contextlib.contextmanager
def busy_cores(busy: bool) -> Iterator[None]:
    """A busy-loop process per core for the body, stopped after (nothing when not busy)."""
    loops = []
    if busy:
        for _ in range(os.cpu_count() or 1):
            loops.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # let them start
    try:
        yield
    finally:
        for loop in loops:
            loop.terminate()
        for loop in loops:
            loop.wait()


# One measure: steps (or predictions) per second at one size, dtype and thread choice.


def _data(rows: int, dtype: str, backend: str) -> tuple[object, object]:
    rng = np.random.default_rng(0)
    X = rng.random((max(rows, 1000), D)).astype(dtype)
    y = rng.integers(0, C, X.shape[0])
    if backend == "torch":
        import torch

        return torch.asarray(X), torch.asarray(y)
    return X, y


@contextlib.contextmanager
def blas_threads_only(fixed: bool) -> Iterator[None]:
    """For a fixed count (``fixed``): the BLAS's own threads, without xpnet's halves."""
    split_up_to = _threads.SPLIT_UP_TO
    if fixed:
        _threads.SPLIT_UP_TO = 0
    try:
        yield
    finally:
        _threads.SPLIT_UP_TO = split_up_to


def measure(case: tuple, dtype: str, backend: str, threads: int | None, count: int) -> float:
    """Seconds for ``count`` training steps (or test-set predictions) of ``case``: with
    ``threads`` BLAS threads, or (None) xpnet's default."""
    with blas_threads_only(threads is not None):
        return _measure(case, dtype, backend, threads, count)


def _measure(case: tuple, dtype: str, backend: str, threads: int | None, count: int) -> float:
    _, rows, H, kind = case
    X, y = _data(rows, dtype, backend)
    net = TwoLayerNet(D, H, C, dtype=dtype, backend=backend, seed=0, init="he")
    if kind == "train":
        start = time.perf_counter()
        net.train(X, y, None, None, num_iters=count, batch_size=rows, learning_rate=1e-3,
                  compile=False, threads=threads)  # fmt: skip
        return time.perf_counter() - start
    size = product_size(rows, D, H)
    chosen = resolve_threads(threads, size, net.backend)
    start = time.perf_counter()
    with using_threads(chosen, net.backend, size):
        for _ in range(count):
            net.predict(X[:rows])
    return time.perf_counter() - start


def calibrate(case: tuple, dtype: str, backend: str, target: float) -> int:
    """How many steps take about ``target`` seconds with one thread (a warm-up too)."""
    measure(case, dtype, backend, 1, 2)
    seconds = measure(case, dtype, backend, 1, 3) / 3
    return max(3, round(target / seconds))


def wait_for_quiet(limit: float, timeout: float) -> float:
    """Wait (up to ``timeout`` seconds) for a second in which other processes use less
    than ``limit`` cores; return the load of the last second."""
    deadline = time.perf_counter() + timeout
    while True:
        with others_load() as load:
            time.sleep(1.0)
        if load["cores"] < limit or time.perf_counter() > deadline:
            return load["cores"]


def measure_repeat(case: tuple, dtype: str, backend: str, count: int, busy: bool,
                   args: argparse.Namespace,
                   repeat: int) -> tuple[dict[int | None, float], float]:  # fmt: skip
    """One repeat: each choice in turn, the order rotating with ``repeat``, and the cores
    other processes used meanwhile. On the machine as it is, a repeat during which others
    used ``args.quiet`` cores or more is measured again (after a quiet second), up to
    ``args.tries`` times."""
    shift = repeat % len(CHOICES)
    order = CHOICES[shift:] + CHOICES[:shift]
    for _ in range(1 if busy else args.tries):
        if not busy:
            wait_for_quiet(args.quiet, args.wait)
        with others_load() as load:
            times = {}
            for choice in order:
                time.sleep(PAUSE)
                times[choice] = measure(case, dtype, backend, choice, count)
        if busy or load["cores"] < args.quiet:
            break
    return times, load["cores"]


def measure_condition(args: argparse.Namespace, busy: bool) -> dict:
    """Every size, dtype and choice, the choices in turn within each repeat; medians."""
    rows = []
    combos = [(case, dtype, "numpy") for case in SIZES for dtype in ("float32", "float64")]
    if args.torch:
        combos += [(case, "float32", "torch") for case in SIZES]
    loads: list[float] = []
    with busy_cores(busy), others_load() as load:
        for case, dtype, backend in combos:
            count = calibrate(case, dtype, backend, args.seconds)
            times: dict[int | None, list[float]] = {choice: [] for choice in CHOICES}
            for repeat in range(args.repeats):
                found, cores = measure_repeat(case, dtype, backend, count, busy, args, repeat)
                loads.append(cores)
                for choice, seconds in found.items():
                    times[choice].append(seconds)
            rates = {choice: count / statistics.median(t) for choice, t in times.items()}
            _, n, H, _ = case
            net_backend = TwoLayerNet(D, H, C, backend=backend).backend
            default = resolve_threads(None, product_size(n, D, H), net_backend)
            rows.append({"case": case, "dtype": dtype, "backend": backend, "rates": rates,
                         "default": default, "count": count})  # fmt: skip
            line = ", ".join(f"{_choice(c, default)} {r:.1f}/s" for c, r in rates.items())
            print(f"{'busy' if busy else 'quiet'}: {case[0]}, {backend} {dtype}: {line}",
                  flush=True)  # fmt: skip
    return {"busy": busy, "rows": rows, "load": load, "loads": loads}


def _choice(choice: int | None, default: int) -> str:
    if choice is None:
        return f"default ({default})"
    return f"{choice} BLAS thread{'s' if choice > 1 else ''}"


# xpnet train, this checkout against another.


def time_train(args: argparse.Namespace, root: Path, out: Path) -> tuple[float, float]:
    """Wall seconds of ``xpnet train`` run from the xpnet in ``root``, and the training's
    steps per second as its progress bar gave them last; the command names the version it
    ran (its ``xpnet.__file__``) on stderr, which is checked."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = "import sys, xpnet; print(xpnet.__file__, file=sys.stderr); " \
          "from xpnet.cli import main; sys.exit(main())"  # fmt: skip
    command = [sys.executable, "-c", run,
               "train", *args.train_args.split(), "--output-dir", str(out)]  # fmt: skip
    start = time.perf_counter()
    # Run elsewhere than in a checkout: ``python -c`` puts the working directory first on
    # the path, before PYTHONPATH.
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                          cwd=out.parent)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"xpnet train from {root} failed:\n{done.stdout}\n{done.stderr}")
    ran = Path(done.stderr.splitlines()[0]).resolve()
    if not ran.is_relative_to(root.resolve()):
        raise SystemExit(f"xpnet train imported {ran}, not the xpnet in {root}")
    shutil.rmtree(out, ignore_errors=True)  # the next run writes a fresh one
    # tqdm's "401.86it/s", or an older bar's "629 it/s": the last is the whole run's
    speeds = re.findall(r"([\d,]+(?:\.\d+)?) ?it/s", done.stderr)
    return seconds, float(speeds[-1].replace(",", "")) if speeds else float("nan")


def compare_train(args: argparse.Namespace, busy: bool) -> dict:
    here = Path(__file__).resolve().parents[1]
    checkouts = {"this checkout": here, f"{args.against_name}": args.against.resolve()}
    times: dict[str, list[float]] = {name: [] for name in checkouts}
    speeds: dict[str, list[float]] = {name: [] for name in checkouts}
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, busy_cores(busy):
        for repeat in range(args.train_repeats):
            order = list(checkouts.items())
            if repeat % 2:  # alternate who goes first
                order.reverse()
            for name, root in order:
                for _ in range(1 if busy else args.tries):  # quiet: again if others ran
                    if not busy:
                        wait_for_quiet(args.quiet, args.wait)
                    with others_load() as load:
                        seconds, speed = time_train(args, root, Path(tmp) / "out")
                    if busy or load["cores"] < args.quiet:
                        break
                times[name].append(seconds)
                speeds[name].append(speed)
                loads.append(load["cores"])
            print(
                f"{'busy' if busy else 'quiet'}: xpnet train, repeat {repeat + 1}: "
                + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items()),
                flush=True,
            )
    return {"busy": busy, "times": times, "speeds": speeds, "loads": loads}


# The report.


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    blas = [f"{info['internal_api']} {info.get('version')} ({info.get('architecture')}), "
            f"{info['num_threads']} threads by default"
            for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]  # fmt: skip
    unset = os.environ.get("XPNET_BENCH_UNSET")
    overrides = f"unset for this run: {unset}" if unset else "OPENBLAS_CORETYPE and " \
        "OPENBLAS_L2_SIZE were not set"  # fmt: skip
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- cpu: {cpu}, {os.cpu_count()} cores; load average before the run "
        f"{os.getloadavg()[0]:.2f}",
        f"- numpy {np.__version__}; BLAS: {'; '.join(blas)}",
        f"- environment: {overrides}",
    ]


TITLES = {False: "the machine as quiet as it got", True: "a busy loop on every core"}
STEPS = "## Steps per second"
TRAIN = "## `xpnet train` against another version"


def _command(args: argparse.Namespace, busy: bool, *extra: str) -> str:
    condition = f" --only {'busy' if busy else 'quiet'}"
    return "`python benchmarks/threads.py " + " ".join(extra) + condition + " --write`"


def render_condition(args: argparse.Namespace, found: dict) -> str:
    load, busy = found["load"], found["busy"]
    table = ", ".join(
        f"up to {bound / 1e6:,.0f} M: {'all' if threads is None else threads}"
        if bound != float("inf") else f"above: {'all' if threads is None else threads}"
        for bound, threads in THREADS_BY_SIZE
    )  # fmt: skip
    quiet = (
        f" (a repeat during which they used {args.quiet} or more was measured again, after "
        f"a quieter second, up to {args.tries} times)"
    )
    lines = [
        f"{STEPS}, {TITLES[busy]}",
        "",
        _command(args, busy, *(["--torch"] if args.torch else []), f"--repeats {args.repeats}")
        + ". Steps per second of `TwoLayerNet.train` (eager, random data of MNIST's width), "
        "or test-set predictions per second, with 1 and 2 threads in the BLAS (xpnet's "
        "halves turned off) and xpnet's default (its count in brackets; from "
        f"{_threads.SPLIT_FROM / 1e6:,.0f} M to {_threads.SPLIT_UP_TO / 1e6:,.0f} M its "
        "threads run halves of the large products on a one-thread BLAS), the medians of "
        f"{args.repeats} repeats of about "
        f"{args.seconds} s each, the three in turn within each repeat, the order rotating "
        f"from repeat to repeat, a {PAUSE} s pause before each. The table in use "
        "(`xpnet.backend.THREADS_BY_SIZE`, by the largest product's multiply-adds): "
        f"{table} threads the process allows.",
        "",
        *machine(),
        "",
        f"Other processes used {load['cores']:.2f} cores on average over these "
        f"{load['seconds']:.0f} s{' (the busy loops included)' if busy else ''}; during the "
        f"repeats themselves {statistics.median(found['loads']):.2f} (median), "
        f"{max(found['loads']):.2f} at most{'' if busy else quiet}.",
        "",
        "| size | product (M multiply-adds) | library | 1 BLAS thread | 2 BLAS threads | default | "
        "2 / 1 | default / best |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for row in found["rows"]:
        label, n, H, _ = row["case"]
        rates = row["rates"]
        best = max(rates[1], rates[2])
        lines.append(
            f"| {label} | {product_size(n, D, H) / 1e6:,.1f} | {row['backend']} {row['dtype']} "
            f"| {rates[1]:,.1f} | {rates[2]:,.1f} | {rates[None]:,.1f} ({row['default']}) "
            f"| {rates[2] / rates[1]:.2f} | {rates[None] / best:.2f} |"
        )
    return "\n".join(lines)


def render_train(args: argparse.Namespace, found: dict) -> str:
    times, loads, speeds, busy = found["times"], found["loads"], found["speeds"], found["busy"]
    medians = {name: statistics.median(t) for name, t in times.items()}
    here, there = medians["this checkout"], medians[args.against_name]
    rate = {name: statistics.median(v) for name, v in speeds.items()}
    steps_here, steps_there = rate["this checkout"], rate[args.against_name]
    shown = "; ".join(f"{name}: {', '.join(f'{t:.1f}' for t in ts)} s"
                      for name, ts in times.items())  # fmt: skip
    lines = [
        f"{TRAIN}, {TITLES[busy]}",
        "",
        _command(args, busy, "--no-steps --against DIR", f"--against-name {args.against_name}",
                 f"--train-args '{args.train_args}'", f"--train-repeats {args.train_repeats}")
        + f": `xpnet train {args.train_args}`, the whole command (start-up, data reading, "
        "measuring and plots included), from this checkout and from `DIR` (with this "
        "interpreter, `DIR` on `PYTHONPATH`) in turn, the first of the two alternating.",
        "",
        *machine(),
        "",
        f"Median wall time: this checkout {here:.1f} s, {args.against_name} {there:.1f} s, "
        f"this checkout {there / here:.2f} times as fast (runs: {shown}). The training "
        f"alone, as the progress bar counts it: {steps_here:,.0f} against "
        f"{steps_there:,.0f} steps per second (medians), {steps_here / steps_there:.2f} "
        f"times as fast. Other processes used {statistics.median(loads):.2f} cores during a "
        f"run (median; {max(loads):.2f} at most){', the busy loops included' if busy else ''}"
        + ("." if busy else f"; a run during which they used {args.quiet} or more was "
           f"run again, after a quieter second, up to {args.tries} times."),
    ]  # fmt: skip
    return "\n".join(lines)


def write_report(sections: dict[str, str]) -> None:
    """Put the measured sections in :data:`REPORT`, keeping the others as they are."""
    kept: dict[str, str] = {}
    if REPORT.exists():
        text = REPORT.read_text()
        for part in text.split("\n## ")[1:]:
            heading = "## " + part.split("\n", 1)[0]
            kept[heading] = ("## " + part).rstrip() + "\n"
    kept.update({heading: body.rstrip() + "\n" for heading, body in sections.items()})
    order = [f"{STEPS}, {TITLES[False]}", f"{STEPS}, {TITLES[True]}",
             f"{TRAIN}, {TITLES[False]}", f"{TRAIN}, {TITLES[True]}", NOTES_HEADING]  # fmt: skip
    body = "\n".join(kept[h] for h in [*order, *sorted(set(kept) - set(order))] if h in kept)
    REPORT.write_text("# Threads by size class\n\n" + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.25, help="about this long a measure")
    parser.add_argument("--torch", action="store_true", help="torch float32 too")
    parser.add_argument("--quiet", type=float, default=0.3,
                        help="as the machine is: measure again above this many cores of "
                        "other work (default: %(default)s)")  # fmt: skip
    parser.add_argument("--tries", type=int, default=4, help="at most this many measures")
    parser.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="wait at most this long for a quiet second (seconds)",
    )
    parser.add_argument("--only", choices=["quiet", "busy"], help="one condition only")
    parser.add_argument("--against", type=Path, help="another xpnet checkout, to time train")
    parser.add_argument("--against-name", default="the other checkout")
    parser.add_argument("--train-args", default="--recipe lab --num-iters 2000")
    parser.add_argument("--train-repeats", type=int, default=3)
    parser.add_argument("--no-steps", action="store_true", help="only the train comparison")
    parser.add_argument("--write", action="store_true", help=f"write {REPORT.name}")
    args = parser.parse_args()
    busy_choices = {"quiet": [False], "busy": [True], None: [False, True]}[args.only]
    conditions = [] if args.no_steps else [measure_condition(args, busy) for busy in busy_choices]
    trains = [compare_train(args, busy) for busy in busy_choices] if args.against else []
    sections = {f"{STEPS}, {TITLES[found['busy']]}": render_condition(args, found)
                for found in conditions}  # fmt: skip
    sections |= {f"{TRAIN}, {TITLES[found['busy']]}": render_train(args, found)
                 for found in trains}  # fmt: skip
    print("\n".join(sections.values()))
    if args.write:
        write_report(sections)
        print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
