"""``xpnet export``: a model file as an ONNX model, for ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from xpnet.cli._options import Command
from xpnet.export import export_onnx


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    parser.add_argument(
        "--output", type=Path, help="the .onnx file to write (default: the model's path, .onnx)"
    )


def _export(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        written = export_onnx(args.model, args.output)
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    print(f"wrote {written}")
    return 0


COMMAND = Command(
    "export",
    "write a model as ONNX, for ONNX Runtime",
    _add_arguments,
    _export,
    description="Write a model file as an ONNX model traced from xpnet's own code: input "
    "`images` (float32 raw pixels 0..255, shape (N, 28, 28, 1)), outputs `labels` and "
    "`probabilities`. A float64 model is exported in float32. Needs: pip install "
    "ndonnx onnx onnxruntime.",
)
