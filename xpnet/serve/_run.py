"""Running the application: a listening socket, and uvicorn serving it until Ctrl-C.

uvicorn does the HTTP: parsing (h11, with :mod:`xpnet.serve._protocol`'s deadline for a
request's head), keep-alive, the listen backlog, and the limit on concurrent connections
past which it answers 503. One process, one event loop: slow or idle clients hold a
connection each, not a thread; the network computes one request at a time (``/predict``'s
one image in the event loop, ``/draw``'s rendering in a worker thread). For several
processes, run :func:`xpnet.serve.create_app` under an ASGI server's workers
(``docs/serving.md``: "Draw a digit").
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from typing import TextIO

import uvicorn
from starlette.types import ASGIApp

from xpnet._wording import setting
from xpnet.serve._guard import MAX_HEAD_BYTES
from xpnet.serve._protocol import HeadTimeoutProtocol

__all__ = ["BACKLOG", "MAX_CONNECTIONS", "is_loopback", "listen", "run"]

#: Connections the kernel queues before the server accepts them.
BACKLOG = 2048
#: Open connections (idle, slow or busy) past which a request is answered 503.
MAX_CONNECTIONS = 4096
#: Seconds an idle connection is kept open after an answer.
_KEEP_ALIVE = 5
#: Seconds Ctrl-C waits for the requests in progress.
_GRACEFUL = 5
#: File descriptors the process needs besides one per connection.
_SPARE_FILES = 64


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback interface."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return all(
        ipaddress.ip_address(str(address).split("%")[0]).is_loopback for address in addresses
    )


def listen(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A socket listening on ``host``:``port``, for :func:`run`.

    ``port=0`` takes a free port, which ``sock.getsockname()[1]`` tells. An address that
    is not the loopback interface prints a warning on stderr: the API has no
    authentication, and anyone who can reach the port can use it.

    Raises
    ------
    ValueError
        If ``host`` is empty (which would listen on every interface) or ``port`` is not a
        port number (0 to 65535).
    OSError
        If the address cannot be listened on (a port in use, an unknown name), with the
        address in the message.
    """
    if not host:
        raise ValueError(
            f"{setting('host', '')} would listen on every interface; give an address: "
            "127.0.0.1 (this machine only), or 0.0.0.0 (every IPv4 interface) if that is "
            "what you mean"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535 (0: a free one), got {port!r}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as err:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; choose another "
            f"{setting('port')} (0 takes a free one) or {setting('host')}"
        ) from None
    if not is_loopback(host):
        print(
            f"xpnet serve: warning: listening on {host}, which other machines can reach: "
            "the API has no authentication, anyone who can connect can use it (by an "
            "allowed host name); listen on 127.0.0.1 unless you mean that",
            file=sys.stderr,
            flush=True,
        )
    return sock


def run(app: ASGIApp, sock: socket.socket, *, log_requests: bool = False) -> None:
    """Serve ``app`` on a listening socket until SIGINT or SIGTERM.

    Parameters
    ----------
    app : ASGI application
        Usually :func:`xpnet.serve.create_app`'s.
    sock : socket.socket
        A listening socket (:func:`listen`); closed when the server stops.
    log_requests : bool
        Print a line for each request answered (client, method, path, status) on stdout.

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C (SIGINT), once the server has stopped.
    """
    config = uvicorn.Config(
        app,
        http=HeadTimeoutProtocol,
        ws="none",
        lifespan="off",
        server_header=False,
        proxy_headers=False,
        log_config=None,
        log_level="error",
        access_log=log_requests,
        backlog=BACKLOG,
        limit_concurrency=_connection_limit(),
        timeout_keep_alive=_KEEP_ALIVE,
        timeout_graceful_shutdown=_GRACEFUL,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    _log_to(logging.getLogger("uvicorn.error"), sys.stderr, "xpnet serve: %(message)s")
    if log_requests:
        _log_to(logging.getLogger("uvicorn.access"), sys.stdout, "%(message)s")
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _log_to(logger: logging.Logger, stream: TextIO, form: str) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(form))
    logger.handlers = [handler]
    logger.propagate = False


def _connection_limit() -> int:
    """:data:`MAX_CONNECTIONS`, or fewer where the process may not open that many files:
    its soft limit is raised as far as the hard one allows."""
    if sys.platform == "win32":
        return MAX_CONNECTIONS
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return min(MAX_CONNECTIONS, soft - _SPARE_FILES)
