"""Shutting the webhook down without failing an admission request.

The kube-apiserver keeps HTTP keep-alive connections to each replica. On SIGTERM uvicorn closes the idle
ones at once, and a request the API server sends on one at that instant fails (`EOF`, `use of closed
network connection`): a pod creation refused, seen in tests/helm during `helm upgrade`. So on the first
SIGTERM the server keeps serving for `drain_seconds` and closes each connection after its next response
(`Connection: close`, which the API server honours by opening a new one, to a live replica); only then
does uvicorn's own shutdown run. A second signal stops at once. The Deployment's preStop sleep comes
before all of this, while the replica leaves the Service's endpoints.
"""

from __future__ import annotations

import time
from types import FrameType
from typing import Any, Awaitable, Callable

import uvicorn

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose first SIGTERM only starts the drain (`draining`); it exits `drain_seconds` later."""

    def __init__(self, config: uvicorn.Config, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.draining = False
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is None and self.drain_seconds > 0:
            self.draining = True
            self._drain_until = time.monotonic() + self.drain_seconds
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and not self.should_exit and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def closing_when(app: ASGIApp, draining: Callable[[], bool]) -> ASGIApp:
    """`app`, whose HTTP responses say `Connection: close` while `draining()`."""

    async def wrapped(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                      send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") != "http" or not draining():
            await app(scope, receive, send)
            return

        async def send_closing(message: Any) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped
