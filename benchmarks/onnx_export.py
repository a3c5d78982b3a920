"""ONNX Runtime against ``predict``: the exported model beside the network it came from.

Trains the fast recipe briefly on MNIST (200 steps; the speed does not depend on the
accuracy), exports it with :func:`xpnet.export.export_onnx`, and times, on test images
at batch 1 and 1000:

- ``predict`` on rows already preprocessed (NumPy);
- ``preprocessing`` then ``predict``, from raw images, as the ONNX model works;
- ONNX Runtime on raw images (its graph includes the preprocessing and the softmax).

Each figure is the median over repeats of the mean time of a call; prints a Markdown
table. Usage: ``python benchmarks/onnx_export.py [--repeats 15] [--dtype float32]``
(needs ``pip install 'xpnet[onnx]'`` and the MNIST files: ``xpnet data``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Batch sizes, and calls per repeat at each (so a repeat takes a measurable time).
BATCHES = {1: 200, 1000: 10}


def seconds_per_call(call: Callable[[], object], calls: int, repeats: int) -> float:
    """The median over ``repeats`` of the mean seconds of ``calls`` calls (after one warm-up)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)

    import onnxruntime

    from xpnet.data import read_data_sets
    from xpnet.export import export_onnx
    from xpnet.pipeline import run

    result = run("fast", data_dir=args.data_dir, dtype=args.dtype, num_iters=200)
    net = result.net
    *_, X_test, _ = read_data_sets(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float64 exported in float32
        path = export_onnx(net, Path(tmp) / "model.onnx")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    D, H, C = net.sizes
    print(
        f"{D}-{H}-{C} network ({args.dtype}), onnxruntime {onnxruntime.__version__}, "
        f"NumPy {np.__version__}; median of {args.repeats} repeats, milliseconds per call"
    )
    print()
    print(
        "| batch | predict (rows) | preprocessing + predict | ONNX Runtime (raw images) "
        "| ONNX Runtime's speed-up: vs predict, vs both |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for batch, calls in BATCHES.items():
        images = X_test[:batch]
        rows = net.preprocessing(images)
        labels = session.run(["labels"], {"images": images})[0]
        if not np.array_equal(labels, net.predict(rows)):
            raise SystemExit(f"ONNX Runtime's labels differ from predict's at batch {batch}")
        contenders: list[Callable[[], object]] = [
            lambda rows=rows: net.predict(rows),
            lambda images=images: net.predict(net.preprocessing(images)),
            lambda images=images: session.run(None, {"images": images}),
        ]
        times = [seconds_per_call(call, calls, args.repeats) for call in contenders]
        ms = " | ".join(f"{1e3 * t:.3f}" for t in times)
        print(f"| {batch} | {ms} | {times[0] / times[2]:.1f}x, {times[1] / times[2]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
