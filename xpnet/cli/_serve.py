"""``xpnet serve``: a local page to draw digits on and watch a model read them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xpnet.cli._options import DEFAULT, Command, add_compute_options, apply_compute_options
from xpnet.neural_net import TwoLayerNet
from xpnet.serve import make_server


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on" + DEFAULT)
    parser.add_argument("--port", type=int, default=8000, help="the port (0: a free one)" + DEFAULT)
    add_compute_options(parser, dtype_default=None)


def _serve(args: argparse.Namespace) -> int:
    apply_compute_options(args)
    net = TwoLayerNet.load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    server = make_server(net, args.host, args.port)
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}/"
    print(f"serving {args.model} on {url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("xpnet serve: stopped", file=sys.stderr)
        return 130
    finally:
        server.server_close()
    return 0


COMMAND = Command(
    "serve",
    "a local web page to draw digits on and watch the model read them",
    _add_arguments,
    _serve,
    description="Serve a page to draw a digit on (mouse or finger) that shows the model's "
    'reading as you draw, and a JSON API: POST /predict {"image": 28x28 values 0..255}. '
    "Ctrl-C stops it.",
)
