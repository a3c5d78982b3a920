"""xpnet's scikit-learn estimator beside scikit-learn's own MLPClassifier, on MNIST.

Run it as ``python benchmarks/sklearn_mnist.py``. Both train the same network (784-H-10,
ReLU, softmax) with the same solver: minibatch SGD, constant learning rate, momentum 0.9
(not Nesterov), batches of 200, L2 regularisation, shuffled epochs, a fixed number of
epochs (no early stopping), float32, on the same rows (pixels scaled to 0..1, training
mean subtracted). The fits alternate, ``--repeats`` times; the report gives the median
fit time and the test accuracy. It writes ``benchmarks/SKLEARN.md``.

MLPClassifier scales its L2 term by the batch size (``alpha * 0.5 * sum(W**2) /
batch_size`` per batch), so its ``alpha`` equals xpnet's ``reg`` times the batch size.
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are unset for this process, as in ``bench.py``.
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
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from xpnet.pipeline import prepare_data  # noqa: E402
from xpnet.sklearn import TwoLayerClassifier  # noqa: E402

OUTPUT = Path(__file__).with_name("SKLEARN.md")


def models(hidden: int, epochs: int, learning_rate: float, reg: float, batch: int, seed: int):
    """The two contenders, configured alike."""
    return {
        "xpnet TwoLayerClassifier": TwoLayerClassifier(
            hidden_size=hidden, learning_rate_init=learning_rate, momentum=0.9, reg=reg,
            batch_size=batch, max_iter=epochs, n_iter_no_change=epochs + 1, shuffle=True,
            dtype="float32", random_state=seed,
        ),
        "scikit-learn MLPClassifier": MLPClassifier(
            hidden_layer_sizes=(hidden,), solver="sgd", learning_rate="constant",
            learning_rate_init=learning_rate, momentum=0.9, nesterovs_momentum=False,
            alpha=reg * batch, batch_size=batch, max_iter=epochs, shuffle=True, tol=0.0,
            n_iter_no_change=epochs + 1, early_stopping=False, random_state=seed,
        ),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--reg", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    data = prepare_data("scale_and_center")
    X = np.concatenate([data.X_train, data.X_val])  # the 60,000 training images
    y = np.concatenate([data.y_train, data.y_val])
    seconds: dict[str, list[float]] = {}
    accuracy: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        configured = models(args.hidden, args.epochs, args.learning_rate, args.reg, args.batch,
                            seed=repeat)  # fmt: skip
        for name, model in configured.items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            accuracy.setdefault(name, []).append(float(model.score(data.X_test, data.y_test)))
            print(f"repeat {repeat + 1}: {name}: {seconds[name][-1]:.1f} s, "
                  f"test accuracy {accuracy[name][-1]:.4f}", flush=True)  # fmt: skip

    import threadpoolctl

    blas = "; ".join(
        f"{info['internal_api']} {info.get('version')}, {info['num_threads']} threads"
        for info in threadpoolctl.threadpool_info()
        if info["user_api"] == "blas"
    )
    xpnet, sklearn = (statistics.median(seconds[name]) for name in seconds)
    lines = [
        "# xpnet's estimator beside scikit-learn's MLPClassifier",
        "",
        "Written by `python benchmarks/sklearn_mnist.py`; every figure comes from one run of it.",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- cpu: {_cpu()}, {os.cpu_count()} cores; python {platform.python_version()}",
        f"- numpy {np.__version__}, BLAS: {blas}",
        f"- environment: {os.environ.get('XPNET_BENCH_UNSET', 'OPENBLAS_* overrides not set')}",
        "",
        f"MNIST, 60,000 training and 10,000 test images, pixels scaled to 0..1 and centred, "
        f"float32. 784-{args.hidden}-10, SGD with momentum 0.9 (not Nesterov), learning rate "
        f"{args.learning_rate:g} (constant), batches of {args.batch}, L2 {args.reg:g} "
        f"(MLPClassifier's alpha {args.reg * args.batch:g}), {args.epochs} shuffled epochs, "
        f"no early stopping. {args.repeats} fits each, alternating, seeds 0 to "
        f"{args.repeats - 1}.",
        "",
        "| estimator | median fit (s) | fits (s) | test accuracy (median) | test accuracies |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for name in seconds:
        lines.append(
            f"| {name} | {statistics.median(seconds[name]):.1f} | "
            + ", ".join(f"{s:.1f}" for s in seconds[name])
            + f" | {statistics.median(accuracy[name]):.4f} | "
            + ", ".join(f"{a:.4f}" for a in accuracy[name])
            + " |"
        )
    lines += ["", f"MLPClassifier's time / xpnet's time: {sklearn / xpnet:.2f}", ""]
    report = "\n".join(lines)
    print(report)
    from xpnet._atomic import atomic_write

    with atomic_write(args.output, "w") as f:
        f.write(report)
    return 0


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
