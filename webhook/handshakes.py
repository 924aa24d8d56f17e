"""TLS handshakes, bounded per process: a deadline, and a cap on those under way.

What uvicorn (0.54) does: it hands its TLS context to `loop.create_server`, which handshakes every
accepted connection with asyncio's defaults, 60 s to finish and no cap on how many are under way. Each
one costs memory from accept on (the TLS layer, OpenSSL's state, read buffers), before webhook/guard.py
sees it: 2,200 slow TLS clients took a replica from 75 to 247 MiB, its limit being 256 Mi (issue 23).

Here uvicorn serves plain TCP, and the protocol it makes for each accepted connection is a `Handshake`
(`Gate` is uvicorn's `http=`). It takes the connection's socket before anything is read from it (a
duplicate of its descriptor; the plain transport is closed in `connection_made`, so the event loop never
starts reading it) and hands it to `loop.connect_accepted_socket` with the TLS context and
`limits.handshake_timeout_seconds`; the HTTP protocol (guard.py's) is made there and gets the TLS
transport once the handshake is done. At most `limits.max_handshakes` are under way per process: a new
connection takes the place of the oldest, which is the one stalling (the API server's handshake takes
milliseconds), so a flood of silent or stalled clients never keeps the API server out. A connection
being closed (after `Connection: close`, a 408, an eviction) gets `limits.close_timeout_seconds` for
its TLS close, not asyncio's 30 s. With guard.py's `max_connections` after the handshake, what a process
holds is bounded whoever connects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import Any, Callable

from webhook.settings import Limits

log = logging.getLogger("kube_elector.webhook")


class Gate:
    """uvicorn's `http=`: makes a `Handshake` per accepted connection, and keeps those under way.

    Made before the worker processes fork: each process has its own copy, so its own cap (per process,
    as guard.py's limits are).
    """

    def __init__(self, protocol: Callable[..., asyncio.Protocol], context: Callable[[], ssl.SSLContext],
                 limits: Limits) -> None:
        self.protocol = protocol  # the HTTP protocol, made once the handshake is done
        self.context = context  # the context now served: webhook/tls.py replaces it on a rotation
        self.limits = limits
        self.pending: dict[Handshake, None] = {}  # the handshakes under way, oldest first
        self.tasks: set[asyncio.Task[None]] = set()
        self.evicted = 0  # closed to make room for a newer connection
        self.failed = 0  # timed out, not TLS, or closed by the client

    def __call__(self, **kwargs: Any) -> "Handshake":
        """Called by uvicorn with the HTTP protocol's arguments (config, server_state, app_state, _loop)."""
        return Handshake(self, kwargs)

    def admit(self, handshake: "Handshake") -> None:
        """Count `handshake` as under way; at the cap, close the oldest first."""
        while len(self.pending) >= self.limits.max_handshakes:
            oldest = next(iter(self.pending))
            del self.pending[oldest]
            self.evicted += 1
            oldest.evict()
        self.pending[handshake] = None


class Handshake(asyncio.Protocol):
    """One accepted TCP connection until its TLS handshake is done (or not, in time)."""

    def __init__(self, gate: Gate, kwargs: dict[str, Any]) -> None:
        self.gate = gate
        self.kwargs = kwargs
        self.sock: socket.socket | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        try:
            self.sock = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        except OSError:  # out of descriptors: this client waits for nothing
            transport.abort()
            return
        transport.abort()  # closed before the loop reads from it: the ClientHello waits in the socket
        self.gate.admit(self)
        self.task = asyncio.get_running_loop().create_task(self._handshake(self.sock))
        self.gate.tasks.add(self.task)
        self.task.add_done_callback(self._done)

    def evict(self) -> None:
        """Close this connection, its handshake begun or not."""
        if self.task is not None:
            self.task.cancel()

    async def _handshake(self, sock: socket.socket) -> None:
        gate, limits = self.gate, self.gate.limits
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: gate.protocol(**self.kwargs), sock, ssl=gate.context(),
                ssl_handshake_timeout=limits.handshake_timeout_seconds,
                ssl_shutdown_timeout=limits.close_timeout_seconds)
        except Exception as exc:  # noqa: BLE001 (the client's doing: too slow, not TLS, gone)
            gate.failed += 1
            log.debug("TLS handshake failed", extra={"event": "handshake_failed", "error": repr(exc)})

    def _done(self, task: asyncio.Task[None]) -> None:
        self.gate.tasks.discard(task)
        self.gate.pending.pop(self, None)
        # The TLS transport owns the descriptor once it took the socket (closing the socket object then
        # only marks it closed); when the handshake never started (evicted first), this closes it.
        if self.sock is not None:
            self.sock.close()
