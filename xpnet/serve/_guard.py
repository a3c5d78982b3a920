"""Who may use the server: its own page, on the names it was told, and nothing else.

A web page on any site can make its visitor's browser send requests to a server on
``127.0.0.1``: directly (a cross-origin ``POST`` of ``text/plain`` or a form needs no
preflight) or by DNS rebinding (a name the page's author controls, resolved first to their
server, then to ``127.0.0.1``, so that the browser takes this server for theirs). The
:class:`Guard` middleware refuses both, before any route runs:

- a ``Host`` that is not one of the allowed names (the loopback names and addresses, and
  those the server was started with): 421, or 400 when there is none or it is malformed.
  A rebinding page's requests carry its own name, so they are refused;
- a request whose target and headers are over :data:`MAX_HEAD_BYTES` (431), and one with
  both ``Transfer-Encoding`` and ``Content-Length`` (400, as RFC 9112 allows: a sign of
  request smuggling);
- an ``Origin`` other than the server's own (``http://`` or ``https://`` and the request's
  own ``Host``): 403. Browsers send ``Origin`` on every cross-origin request and on every
  ``POST``; ``Origin: null`` (a sandboxed frame, a file) is another origin too.

No CORS header is ever sent, so a browser shows no other origin an answer, and a
cross-origin ``POST`` of JSON fails at its preflight (``OPTIONS`` is answered 405). The
API's ``Content-Type: application/json`` requirement (:mod:`xpnet.serve._app`) refuses the
simple requests a form or a ``no-cors`` fetch can send. Every answer also carries headers
that keep the page from being framed by another site (``frame-ancestors 'none'``,
``X-Frame-Options: DENY``) and its answers from being read or cached elsewhere.

Starlette's ``TrustedHostMiddleware`` checks ``Host`` alike, but answers a plain-text 400;
this one answers in JSON, as the rest of the API does, and says how to allow a name.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from http import HTTPStatus

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_HEAD_BYTES",
    "SECURITY_HEADERS",
    "Guard",
    "allowed_names",
    "host_name",
]

#: The names and addresses of this machine's loopback interface, always allowed.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: The most bytes of request target and headers accepted.
MAX_HEAD_BYTES = 16 * 1024

#: Headers on every answer: nothing may frame the page, load anything but its own files,
#: read its answers from another origin (``no-cors``) or keep them in a cache.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

#: A Host header (or an origin's host and port): a name or an IPv4 address, or an IPv6
#: address in brackets, and an optional port. Nothing else (no user, no path) is a host.
_HOST = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]+))(?::[0-9]{1,5})?")


def host_name(value: str) -> str | None:
    """The host of a ``Host`` header, lowercased, an IPv6 address without its brackets.

    Parameters
    ----------
    value : str
        ``name``, ``name:port``, ``[v6 address]`` or ``[v6 address]:port``.

    Returns
    -------
    str or None
        The name or address (an IPv6 address in its short form); None if ``value`` is
        not a host (empty, a user part, a path, spaces, a port that is not a number).
    """
    match = _HOST.fullmatch(value)
    if match is None:
        return None
    if match["ipv6"] is None:
        return match["name"].lower()
    try:
        return str(ipaddress.IPv6Address(match["ipv6"]))  # one spelling: [0::1] is ::1
    except ValueError:
        return None


def allowed_names(hosts: Iterable[str]) -> tuple[str, ...]:
    """The names a :class:`Guard` allows: :data:`LOOPBACK_HOSTS` and ``hosts``, as
    :func:`host_name` spells them.

    Raises
    ------
    ValueError
        If a host is not a host name or address (a port, a scheme, a wildcard).
    """
    names = []
    for host in (*LOOPBACK_HOSTS, *hosts):
        bare = host.removeprefix("[").removesuffix("]")
        name = host_name(f"[{bare}]" if ":" in bare else bare)
        if name is None:
            raise ValueError(
                f"allowed host {host!r} is not a host name or address; give the name "
                "clients use, without scheme or port (digits.example.org, 192.168.1.5)"
            )
        names.append(name)
    return tuple(dict.fromkeys(names))


class Guard:
    """ASGI middleware: the allowed ``Host`` names and the server's own ``Origin`` only,
    and :data:`SECURITY_HEADERS` on every answer.

    Parameters
    ----------
    app : ASGI application
        What answers the requests the guard lets through.
    allowed_hosts : iterable of str
        Names and addresses, besides :data:`LOOPBACK_HOSTS`, that clients may use in
        ``Host`` (``"digits.example.org"``, ``"192.168.1.5"``, ``"::1"``), without a port.
    command_line : bool
        Whether ``xpnet serve`` started the server: a refused host is told how to allow
        another name as the command's option, else as ``create_app``'s argument.

    Raises
    ------
    ValueError
        If an allowed host is not a name or an address (a port, a scheme, a wildcard).
    """

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str] = (), *, command_line: bool = False
    ):
        self.app = app
        self.allowed_hosts = allowed_names(allowed_hosts)
        self.allow_another = (
            "start it with --allowed-host NAME"
            if command_line
            else "create the application with allowed_hosts=[NAME]"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, message = refusal
        body = json.dumps({"error": message}).encode()
        await send_with_headers(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send_with_headers({"type": "http.response.body", "body": body})

    def refusal(self, scope: Scope) -> tuple[HTTPStatus, str] | None:
        """The status and message refusing a request; None to let it in."""
        headers = Headers(scope=scope)
        size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
        size += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if size > MAX_HEAD_BYTES:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, (
                f"the request's target and headers are {size} bytes; at most {MAX_HEAD_BYTES} "
                "are accepted"
            )
        if "transfer-encoding" in headers and "content-length" in headers:
            return HTTPStatus.BAD_REQUEST, (
                "a request may not have both Transfer-Encoding and Content-Length (RFC 9112, "
                "section 6.3): send one"
            )
        hosts, origins = headers.getlist("host"), headers.getlist("origin")
        if len(hosts) != 1 or not hosts[0]:
            return HTTPStatus.BAD_REQUEST, (
                f"the request needs one Host header naming this server, got {hosts}"
            )
        host = hosts[0]
        if host_name(host) not in self.allowed_hosts:
            return HTTPStatus.MISDIRECTED_REQUEST, (
                f"this server answers to {', '.join(self.allowed_hosts)} only, not Host "
                f"{host!r} (other names are refused, so that no web page can reach it by DNS "
                f"rebinding); to use another name, {self.allow_another}"
            )
        own = [f"http://{host}".lower(), f"https://{host}".lower()]
        if len(origins) > 1 or (origins and origins[0].lower() not in own):
            return HTTPStatus.FORBIDDEN, (
                f"requests from origin {', '.join(origins)} are refused: only this server's "
                f"own page ({own[0]}) may use it"
            )
        return None
