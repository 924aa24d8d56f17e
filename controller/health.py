"""/healthz, /readyz and /metrics of the controller (stdlib HTTP server in a thread).

Bounded like every listener here: small request heads (the handler reads one line and a few headers),
a read deadline per connection, and one thread per connection up to a cap.
"""
from __future__ import annotations

import http.server
import socketserver
import threading
from typing import Callable

__all__ = ["HealthServer"]

MAX_CONNECTIONS = 32


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the cap: closed at once
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):  # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class HealthServer:
    """The controller's probes and metrics; /readyz fails until the informers' caches are synced."""

    def __init__(self, host: str, port: int, *, ready: Callable[[], bool], metrics: Callable[[], str]) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5  # seconds to send the request head
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                if self.path == "/healthz":
                    self._answer(200, "ok\n")
                elif self.path == "/readyz":
                    self._answer(200, "ok\n") if outer._ready() else self._answer(503, "caches not synced\n")
                elif self.path == "/metrics":
                    self._answer(200, outer._metrics(), "text/plain; version=0.0.4")
                else:
                    self._answer(404, "not found\n")

            def _answer(self, status: int, text: str, kind: str = "text/plain") -> None:
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # probes are not events
                pass

        self._ready = ready
        self._metrics = metrics
        self._server = _Server((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
