"""A minimal asyncio HTTP/1.1 server (stdlib only): keep-alive requests, plus streamed replies for SSE.

A route gets a `Request` and returns a `Reply`, or a `Stream` coroutine function that owns the
connection until it returns (the connection is then closed).

Bounded (`Limits`), because the probe port is reachable from every pod of the cluster: a request
head over `max_head` bytes gets 431, a body over `max_body` 413, a head (and its body) that has not
arrived `head_timeout` after its first byte 408, an idle keep-alive is closed after `idle_timeout`.
At most `max_connections` connections, `max_per_ip` from one address; a connection over either cap
takes the place of the longest-waiting connection that has no request in progress (an idle
keep-alive or a head still arriving), of the busiest address, or else gets 503. So memory stays
bounded whatever clients do, and the kubelet's probe (which sends its head at once) always gets in.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import time
import urllib.parse
from typing import Any, Awaitable, Callable, Optional, Union

__all__ = ["Limits", "Request", "Reply", "Stream", "Route", "serve", "listen_addresses", "json_reply", "text_reply"]

logger = logging.getLogger("elector.http")

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one listener lets any client hold: a pod on the network must not be able to take the elector down."""

    max_head: int = 8 * 1024  # request line + headers
    max_body: int = 16 * 1024  # no route takes a body; /release sends none
    head_timeout: float = 10.0  # from a head's first byte to its last byte (and its body's)
    idle_timeout: float = 60.0  # a keep-alive connection with no request
    max_connections: int = 64
    max_per_ip: int = 16


@dataclasses.dataclass(frozen=True)
class Request:
    """One parsed request, body included: routes see no socket, so the server alone enforces `Limits`."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclasses.dataclass(frozen=True)
class Reply:
    """A whole answer, sent with its Content-Length so the connection can stay alive for the next request."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


Stream = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Route = Callable[[Request], Awaitable[Union[Reply, Stream]]]


class HttpError(Exception):
    """A request the server refuses before routing: the status to answer, then close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_reply(payload: Any, status: int = 200) -> Reply:
    """Compact JSON with `Cache-Control: no-cache`: the state it carries changes with every election event."""
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode() + b"\n",
                 "application/json", {"Cache-Control": "no-cache"})


def text_reply(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Reply:
    """A plain-text answer; the probes and every error a route gives (403, 404, 405) use it."""
    return Reply(status, text.encode(), content_type)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{key}: {value}" for key, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error(status: int, message: str) -> bytes:
    body = (message + "\n").encode()
    return _head(status, {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
                          "Connection": "close"}) + body


async def _read_request(reader: asyncio.StreamReader, limits: Limits, conn: "_Conn") -> Optional[Request]:
    """The next request, None at EOF or after `idle_timeout` with none. Raises HttpError to refuse one."""
    try:
        async with asyncio.timeout(limits.idle_timeout):
            first = await reader.read(1)
    except TimeoutError:
        return None  # an idle keep-alive: closed quietly
    if not first:
        return None
    try:
        async with asyncio.timeout(limits.head_timeout):
            try:
                raw = first + await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                raise HttpError(431, f"request head larger than {limits.max_head} bytes") from None
            if len(raw) > limits.max_head:
                raise HttpError(431, f"request head larger than {limits.max_head} bytes")
            request_line, *header_lines = raw.decode("latin-1").split("\r\n")
            try:
                method, target, _version = request_line.split()
            except ValueError:
                raise HttpError(400, f"bad request line {request_line[:80]!r}") from None
            headers: dict[str, str] = {}
            for header in header_lines:
                if header:
                    key, _, value = header.partition(":")
                    headers[key.strip().lower()] = value.strip()
            if "transfer-encoding" in headers:
                raise HttpError(400, "request bodies must have a Content-Length")
            declared = headers.get("content-length", "0") or "0"
            if not (declared.isascii() and declared.isdigit()):
                raise HttpError(400, "bad Content-Length")
            if int(declared) > limits.max_body:
                raise HttpError(413, f"body larger than {limits.max_body} bytes")
            body = await reader.readexactly(int(declared)) if int(declared) else b""
    except TimeoutError:
        raise HttpError(408, f"request not received within {limits.head_timeout:g} s") from None
    except asyncio.IncompleteReadError:
        return None
    split = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
    return Request(method.upper(), split.path or "/", query, headers, body)


@dataclasses.dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    ip: str
    waiting_since: Optional[float]  # monotonic time it began waiting for a request; None while one is handled


class _Connections:
    """The open connections of one listener, and who makes room for a new one."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open: set[_Conn] = set()
        self.refused = 0
        self.evicted = 0

    def admit(self, conn: _Conn) -> bool:
        """Whether `conn` may stay: under both caps, or after closing a waiting connection to make room."""
        same_ip = [c for c in self.open if c.ip == conn.ip]
        if len(same_ip) >= self.limits.max_per_ip:
            victim = _longest_waiting(same_ip)
        elif len(self.open) >= self.limits.max_connections:
            per_ip: dict[str, int] = {}
            for c in self.open:
                per_ip[c.ip] = per_ip.get(c.ip, 0) + 1
            ranked = sorted(self.open, key=lambda c: -per_ip[c.ip])
            busiest = [c for c in ranked if per_ip[c.ip] == per_ip[ranked[0].ip]]
            victim = _longest_waiting(busiest) or _longest_waiting(list(self.open))
        else:
            self.open.add(conn)
            return True
        if victim is None:
            self.refused += 1
            return False
        self.evicted += 1
        self.open.discard(victim)
        victim.writer.transport.abort()
        self.open.add(conn)
        return True


async def _drain(writer: asyncio.StreamWriter, timeout: float) -> None:
    """A client that does not read its replies is dropped, not waited for (TimeoutError)."""
    async with asyncio.timeout(timeout):
        await writer.drain()


def _longest_waiting(conns: list[_Conn]) -> Optional[_Conn]:
    waiting = [c for c in conns if c.waiting_since is not None]
    return min(waiting, key=lambda c: c.waiting_since or 0.0) if waiting else None


async def serve(host: str, port: int, route: Route, limits: Limits = Limits()) -> asyncio.base_events.Server:
    """Start serving `route` on host:port; returns the started server."""
    connections = _Connections(limits)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        conn = _Conn(writer, str(peer[0]) if isinstance(peer, tuple) else "", time.monotonic())
        if not connections.admit(conn):
            with contextlib.suppress(Exception):
                writer.write(_error(503, "too many connections"))
                writer.close()
            return
        try:
            while True:
                conn.waiting_since = time.monotonic()
                try:
                    request = await _read_request(reader, limits, conn)
                except HttpError as exc:
                    writer.write(_error(exc.status, str(exc)))
                    await _drain(writer, limits.head_timeout)
                    return
                if request is None:
                    return
                conn.waiting_since = None  # a whole request: never the one to make room
                try:
                    result = await route(request)
                except Exception:
                    logger.exception("handler failed", extra={"fields": {"path": request.path}})
                    result = text_reply("internal error\n", 500)
                if not isinstance(result, Reply):
                    writer.write(_head(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                             "Connection": "close", "X-Accel-Buffering": "no"}))
                    await _drain(writer, limits.head_timeout)
                    await result(reader, writer)
                    return
                close = request.headers.get("connection", "").lower() == "close"
                headers = {"Content-Type": result.content_type, "Content-Length": str(len(result.body)),
                           **result.headers}
                if close:
                    headers["Connection"] = "close"
                writer.write(_head(result.status, headers) + (b"" if request.method == "HEAD" else result.body))
                await _drain(writer, limits.head_timeout)
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError, TimeoutError):
            pass
        finally:
            connections.open.discard(conn)
            with contextlib.suppress(Exception):
                writer.close()

    # limit: the reader's buffer (and readuntil's reach) stops at a head's cap, never at 64 KiB
    return await asyncio.start_server(handle, listen_addresses(host, port), port, reuse_address=True,
                                      limit=limits.max_head)


def listen_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` names, resolved here, once, before anything else runs (the injected --http is
    "localhost": /etc/hosts). Given a name, asyncio would resolve it in its default executor, whose idle
    worker thread then lives as long as the sidecar: its stack, its own malloc arena and the thread pool's
    modules, ~0.7 MiB of RSS for one lookup. Numeric addresses asyncio takes without the executor."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
