"""``xpnet serve``: a local page to draw digits on and watch a model read them.

Starlette and uvicorn are imported when the command runs, not with the command line, so
that the other commands work without the ``serve`` extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xpnet.cli._options import DEFAULT, Command, add_compute_options, apply_compute_options


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="a model file written by `xpnet train`")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on; another than 127.0.0.1 lets other machines use "
        "the API, which has no authentication" + DEFAULT,
    )
    parser.add_argument("--port", type=int, default=8000, help="the port (0: a free one)" + DEFAULT)
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name or address clients may use to reach the server (the Host they send), "
        "besides localhost, 127.0.0.1, ::1 and --host; repeat for more",
    )
    parser.add_argument(
        "--log-requests",
        action="store_true",
        help="print a line for each request answered (client, method, path, status)",
    )
    add_compute_options(parser, dtype_default=None)


def _serve(args: argparse.Namespace) -> int:
    from xpnet.serve import create_app, listen, run

    apply_compute_options(args)
    sock = listen(args.host, args.port)  # first: a busy port is found before the model loads
    try:
        app = create_app(
            args.model,
            allowed_hosts=[args.host, *args.allowed_host],
            backend=args.backend,
            device=args.device,
            dtype=args.dtype,
        )
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    print(f"serving {args.model} on {url} (Ctrl-C stops)", flush=True)
    try:
        run(app, sock, log_requests=args.log_requests)
    except KeyboardInterrupt:
        print("xpnet serve: stopped", file=sys.stderr)
        return 130
    return 0


COMMAND = Command(
    "serve",
    "a local web page to draw digits on and watch the model read them",
    _add_arguments,
    _serve,
    description="Serve a page to draw a digit on (mouse or finger) that shows the model's "
    'reading as you draw, and a JSON API: POST /predict {"image": 28x28 values 0..255}, '
    "with Content-Type: application/json. Only its own page may use it: other Host names "
    "and other origins are refused. Needs: pip install starlette uvicorn. Ctrl-C stops it.",
)
