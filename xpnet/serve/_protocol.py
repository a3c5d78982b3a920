"""uvicorn's HTTP/1.1 protocol (h11), with a deadline for each request's head and its
refusals of malformed requests in JSON.

uvicorn closes a connection that stays idle after an answer (``timeout_keep_alive``), but
waits without end for a request that has not arrived whole: a client that sends its
headers a byte at a time (slowloris) holds its connection for ever, and enough of them hold
every connection the server allows. Here a request's head (its request line and headers)
must arrive within :data:`HEAD_TIMEOUT` of the connection or the previous answer; a late
one gets a 408 and the connection is closed. Each deadline is drawn between half of it and
all of it, so that connections opened together (1,000 slow clients) are not all closed,
and do not all connect again, at the same moment: accepting a burst of a thousand takes the
event loop about a tenth of a second, which every other client would wait. (The body's
deadline is the application's, :data:`xpnet.serve._app.BODY_TIMEOUT`.)

h11 refuses what is not HTTP/1.1 as RFC 9112 says (a malformed request line or header, a
``Content-Length`` that is not a number or two that differ, no ``Host``, a head still
incomplete after :data:`~xpnet.serve._guard.MAX_HEAD_BYTES`); uvicorn answers those 400 in
plain text, here in JSON, as the rest of the API. (A head that arrives whole is measured by
:class:`~xpnet.serve._guard.Guard`.) On Ctrl-C, a request whose body is still arriving is
dropped at once, as if its client had gone.
"""

from __future__ import annotations

import asyncio
import json
import random

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from xpnet.serve._guard import MAX_HEAD_BYTES

__all__ = ["HEAD_TIMEOUT", "HeadTimeoutProtocol"]

#: Seconds a client may take to send a request's line and headers, at most (at least half).
HEAD_TIMEOUT = 10.0


def _answer(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error that closes the connection."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's head and JSON refusals."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._disarm_once_read()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # for the next request on this connection
        self._disarm_once_read()  # unless it is already here

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # On Ctrl-C a request whose body is still arriving ends as if its client had left
        # (the application stops waiting for it), rather than being cancelled with a
        # traceback once uvicorn's grace period is over.
        if self.cycle is not None and self.conn.their_state is h11.SEND_BODY:
            self.transport.close()
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        message = (
            "the request is not HTTP/1.1 this server reads: a malformed request line or "
            "header, no Host, a Content-Length that is not a byte count or two that differ, "
            f"or headers over {MAX_HEAD_BYTES} bytes"
        )
        if not self.transport.is_closing():
            self.transport.write(_answer(400, "Bad Request", message))
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            seconds = random.uniform(HEAD_TIMEOUT / 2, HEAD_TIMEOUT)
            self._deadline = self.loop.call_later(seconds, self._head_too_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _disarm_once_read(self) -> None:
        # h11 leaves IDLE once a request's line and headers have been read whole.
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def _head_too_late(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            message = (
                "the request's line and headers did not arrive in time (each connection has "
                f"{HEAD_TIMEOUT / 2:g} to {HEAD_TIMEOUT:g} s for them)"
            )
            self.transport.write(_answer(408, "Request Timeout", message))
            self.transport.close()
