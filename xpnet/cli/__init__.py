"""The ``xpnet`` command: ``train``, ``evaluate``, ``tune``, ``serve``, ``export`` and
``data``, one module each. It parses and prints; the work is :mod:`xpnet.pipeline`'s,
:mod:`xpnet.tune`'s, :mod:`xpnet.export`'s and :mod:`xpnet.serve`'s.

Exit status: 0 on success; 1 for an expected failure (missing data, no GPU, a bad
value or type, output that cannot be written, memory that ran out), with a one-line
message and no traceback;
2 for a usage error; 130 after Ctrl-C (``train`` saves the model first).

An error that xpnet did not raise itself (a library's, or a bug of xpnet's) is also one
line, which says that ``XPNET_DEBUG=1`` shows its traceback; with ``XPNET_DEBUG=1`` in
the environment every error of exit status 1 is printed with its full traceback.
Messages name settings as options (``--data-dir``), where the Python API's name
arguments (``data_dir``): see :mod:`xpnet._wording`.
"""

from __future__ import annotations

import argparse
import linecache
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import xpnet
from xpnet import __version__
from xpnet._wording import command_line
from xpnet.backend import host_memory
from xpnet.cli import _data, _evaluate, _export, _serve, _train, _tune

__all__ = ["main"]

#: The commands, in the order ``xpnet -h`` lists them.
COMMANDS = (_train.COMMAND, _evaluate.COMMAND, _tune.COMMAND, _serve.COMMAND,
            _export.COMMAND, _data.COMMAND)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        with command_line():
            return int(args.command(args))
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`xpnet train | head -1`): a command saves its
        # files before it prints their results, and each file is written whole.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("xpnet: stdout was closed, so the command stopped at its next line of output; "
              "the files it had written are whole", file=sys.stderr)  # fmt: skip
        return 1
    except MemoryError as err:  # an allocation the checks could not foresee, under a limit
        _print_traceback_if_debugging()
        print(f"xpnet: error: {_out_of_memory(err)}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, ImportError, RuntimeError, OSError) as err:
        message = " ".join(str(err).split())
        debugging = _print_traceback_if_debugging()
        # A file, a library or memory that is missing is told as it is; any other error
        # that xpnet did not raise on purpose is a surprise, and its traceback is a step away.
        if not (debugging or isinstance(err, ImportError | OSError) or _raised_by_xpnet(err)):
            message = f"{type(err).__name__}: {message} ({_DEBUG}=1 shows the traceback)"
        print(f"xpnet: error: {message}", file=sys.stderr)
        return 1


#: The environment variable that shows the traceback of every error of exit status 1.
_DEBUG = "XPNET_DEBUG"
_PACKAGE = Path(xpnet.__file__).resolve().parent


def _print_traceback_if_debugging() -> bool:
    """Print the error being handled with its traceback, if ``XPNET_DEBUG`` is 1."""
    if os.environ.get(_DEBUG) != "1":
        return False
    traceback.print_exc()
    return True


def _raised_by_xpnet(err: BaseException) -> bool:
    """Whether ``err`` was raised on purpose by xpnet: its innermost frame is a ``raise``
    statement in xpnet's own code. A library's error, or one of Python's from a bug of
    xpnet's (``None + 1``), is not."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = Path(tb.tb_frame.f_code.co_filename).resolve()
    if not filename.is_relative_to(_PACKAGE):
        return False
    return linecache.getline(str(filename), tb.tb_lineno).lstrip().startswith("raise")


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
