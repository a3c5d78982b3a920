"""The ``xpnet`` command: ``train``, ``evaluate``, ``tune``, ``serve``, ``export`` and
``data``, one module each. It parses and prints; the work is :mod:`xpnet.pipeline`'s,
:mod:`xpnet.tune`'s, :mod:`xpnet.export`'s and :mod:`xpnet.serve`'s.

Exit status: 0 on success; 1 for an expected failure (missing data, no GPU, a bad
value or type, output that cannot be written, memory that ran out), with a one-line
message and no traceback;
2 for a usage error; 130 after Ctrl-C (``train`` saves the model first).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from xpnet import __version__
from xpnet.backend import host_memory
from xpnet.cli import _data, _evaluate, _export, _serve, _train, _tune
from xpnet.data.datasets import command_line_wording

__all__ = ["main"]

#: The commands, in the order ``xpnet -h`` lists them.
COMMANDS = (_train.COMMAND, _evaluate.COMMAND, _tune.COMMAND, _serve.COMMAND,
            _export.COMMAND, _data.COMMAND)  # fmt: skip


@command_line_wording()  # messages name --data-dir, not the Python API's data_dir
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`xpnet train | head -1`): the work is saved.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("xpnet: stdout was closed; results were written before printing", file=sys.stderr)
        return 1
    except MemoryError as err:  # an allocation the checks could not foresee, under a limit
        print(f"xpnet: error: {_out_of_memory(err)}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, ImportError, RuntimeError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"xpnet: error: {message}", file=sys.stderr)
        return 1


def _out_of_memory(err: MemoryError) -> str:
    """What ran out, how much this process may take now, and what to do."""
    said = " ".join(str(err).split())
    left = host_memory()
    room = f"; it may take {left.bytes / 2**20:,.0f} MiB more now ({left.bound})" if left else ""
    return (
        f"out of memory{f' ({said})' if said else ''}{room}: choose smaller sizes (such as "
        "--hidden-size or --batch-size; --train-size in xpnet tune), or free memory or raise "
        "the limit"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnet", description="Train and evaluate the lab's two-layer network on MNIST."
    )
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.description)
        sub.set_defaults(command=command.run)
        command.add_arguments(sub)
    return parser
