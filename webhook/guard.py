"""uvicorn's HTTP protocol (httptools), bounded against slow and hostile clients, once TLS is up
(webhook/handshakes.py bounds the handshakes before it).

What uvicorn lacks (0.54): a deadline for a request head (its keep-alive timer is cancelled by any byte,
so a head sent a byte at a time holds its connection for ever), a cap on a head's size (llhttp has
none that uvicorn sets), a body budget across connections, and a connection cap that does not turn
the API server away: `limit_concurrency` answers 503 to whoever comes after the attacker's
connections, which is how 1,100 slow connections per replica refused every opted-in pod (issue 23).

Here, per process (each worker process has its own `Limits`):
- a head over `max_head_bytes` gets 431; a head (or its body) not received `head_timeout` after its
  first byte (or after the handshake) gets 408; idle keep-alives close after uvicorn's
  `timeout_keep_alive`;
- at `max_connections`, a new connection takes the place of one that is still waiting: first one whose
  request is half-sent, then one that never sent a byte, then the longest idle keep-alive; only when
  every connection has a whole request in the app does the new one get 503. The API server sends its
  request as soon as it connects, so slow clients cannot keep it out, however many they open;
- request bodies still arriving share `body_budget_bytes`: over it, the connection with the largest
  unfinished body is closed. With at most `max_connections` x `max_head_bytes` of heads, memory is
  bounded whatever the clients do.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
import time
from typing import Any, Callable, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from webhook import handshakes
from webhook.settings import Limits


# Why a connection is waiting, in the order they make room for a new one.
_HALF_SENT, _SILENT, _IDLE = 0, 1, 2


def _reply(status: bytes, message: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\n\r\n" + message)


class GuardedProtocol(HttpToolsProtocol):
    """Use `protocol(limits)`: a subclass with its own limits and its own book of connections."""

    limits: ClassVar[Limits] = Limits()
    book: ClassVar[dict["GuardedProtocol", tuple[int, float] | None]] = {}  # waiting: (why, since); None: busy
    body_total: ClassVar[list[int]] = [0]
    evicted: ClassVar[list[int]] = [0]
    refused: ClassVar[list[int]] = [0]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head = 0  # bytes of the head being received (across reads)
        self._parsed = 0  # bytes of the head parsed so far (within one read too)
        self._oversized = False
        self._body = 0  # bytes of the body being received
        self._timer: asyncio.TimerHandle | None = None
        book = type(self).book
        if len(book) >= self.limits.max_connections and not self._make_room():
            type(self).refused[0] += 1
            transport.write(_reply(b"503 Service Unavailable", b"too many connections\n"))
            transport.close()
            return
        book[self] = (_SILENT, time.monotonic())
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        type(self).book.pop(self, None)
        self._disarm()
        type(self).body_total[0] -= getattr(self, "_body", 0)
        self._body = 0
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        book = type(self).book
        state = book.get(self)
        if state is not None and self._timer is None:  # the first byte of a head: its deadline starts
            self._arm()
        if state is not None and state[0] != _HALF_SENT:
            book[self] = (_HALF_SENT, state[1])
        if book.get(self) is not None and self._body == 0:
            self._head += len(data)
        super().data_received(data)
        if book.get(self) is not None and self._body == 0 and self._head > self.limits.max_head_bytes \
                and not self.transport.is_closing():
            self._refuse(b"431 Request Header Fields Too Large",
                         f"request head larger than {self.limits.max_head_bytes} bytes\n".encode())

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        """A head too large within one read: stop parsing it (uvicorn then calls send_400_response)."""
        self._parsed += size
        if self._parsed > self.limits.max_head_bytes:
            self._oversized = True
            raise ValueError("request head too large")

    def send_400_response(self, msg: str) -> None:
        if self._oversized:
            self._refuse(b"431 Request Header Fields Too Large",
                         f"request head larger than {self.limits.max_head_bytes} bytes\n".encode())
            return
        super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._head = self._parsed = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body += len(body)
        total = type(self).body_total
        total[0] += len(body)
        super().on_body(body)
        if total[0] > self.limits.body_budget_bytes:
            largest = max(type(self).book, key=lambda p: p._body)
            largest._refuse(b"503 Service Unavailable", b"too many request bodies in flight\n")

    def on_message_complete(self) -> None:
        type(self).body_total[0] -= self._body
        self._body = 0
        self._disarm()
        type(self).book[self] = None  # busy: the app has the whole request
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self in type(self).book:
            type(self).book[self] = (_IDLE, time.monotonic())  # uvicorn's keep-alive timer now runs

    # ------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.limits.head_timeout_seconds, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_timer", None) is not None:
            self._timer.cancel()  # type: ignore[union-attr]
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if type(self).book.get(self) is not None and not self.transport.is_closing():
            self._refuse(b"408 Request Timeout",
                         f"request not received within {self.limits.head_timeout_seconds:g} s\n".encode())

    def _refuse(self, status: bytes, message: bytes) -> None:
        type(self).book.pop(self, None)
        self.transport.write(_reply(status, message))
        self.transport.close()

    def _make_room(self) -> bool:
        book = type(self).book
        waiting = [(state, p) for p, state in book.items() if state is not None and not p.transport.is_closing()]
        if not waiting:
            return False
        _, victim = min(waiting, key=lambda item: item[0])  # type: ignore[arg-type, return-value]
        type(self).evicted[0] += 1
        book.pop(victim, None)
        victim.transport.abort()
        return True


def protocol(limits: Limits) -> type[GuardedProtocol]:
    """A protocol class for uvicorn's `http=`, with `limits` and its own (per process) book."""
    attrs: dict[str, Any] = {"limits": limits, "book": {}, "body_total": [0], "evicted": [0], "refused": [0]}
    return type("GuardedHttpToolsProtocol", (GuardedProtocol,), attrs)


def uvicorn_options(limits: Limits, context: Callable[[], ssl.SSLContext]) -> dict[str, Any]:
    """The uvicorn.Config arguments that bound the server (its own cap is off: ours makes room instead).
    TLS is not uvicorn's: webhook/handshakes.py handshakes with `context()`, bounded, then hands over to us."""
    return {"http": handshakes.Gate(protocol(limits), context, limits), "timeout_keep_alive": limits.idle_timeout_seconds,
            "limit_concurrency": None, "backlog": limits.backlog, "h11_max_incomplete_event_size": limits.max_head_bytes}


def raise_open_files(limits: Limits) -> int:
    """The soft limit of open files, raised to the hard one: `max_connections` must fit below it, or
    accept() fails (EMFILE) for everyone, the API server included. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < limits.max_connections + limits.max_handshakes + 64:
        raise ValueError(f"limits.max_connections + limits.max_handshakes ({limits.max_connections} + "
                         f"{limits.max_handshakes}) do not fit in the open-files limit ({soft}); lower them or "
                         "raise the container's nofile limit")
    return soft
