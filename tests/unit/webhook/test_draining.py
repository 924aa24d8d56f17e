"""The webhook's shutdown drain (webhook/draining.py) on a real uvicorn server over loopback."""

from __future__ import annotations

import http.client
import signal
import threading
import time

import uvicorn

from localplane.process.ports import free_port
from webhook import draining


async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def start(drain_seconds: float) -> tuple[draining.DrainingServer, threading.Thread, int]:
    port = free_port()
    server: draining.DrainingServer
    config = uvicorn.Config(draining.closing_when(hello, lambda: server.draining), host="127.0.0.1", port=port,
                            log_config=None, access_log=False, loop="asyncio", http="httptools",
                            timeout_keep_alive=30, lifespan="off")
    server = draining.DrainingServer(config, drain_seconds=drain_seconds)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return server, thread, port


def get(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    return response


def test_after_sigterm_it_serves_on_closing_each_connection_after_its_response_then_stops():
    server, thread, port = start(drain_seconds=1.0)
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    first = get(kept)
    assert first.status == 200 and first.getheader("connection") is None  # keep-alive, as the API server uses it
    server.handle_exit(signal.SIGTERM, None)
    signalled = time.monotonic()
    again = get(kept)  # the same idle keep-alive connection: answered, and closed after the answer
    assert again.status == 200 and again.getheader("connection") == "close"
    fresh = get(http.client.HTTPConnection("127.0.0.1", port, timeout=5))
    assert fresh.status == 200 and fresh.getheader("connection") == "close"
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - signalled >= 1.0  # it kept serving for the drain


def test_a_second_signal_stops_at_once():
    server, thread, port = start(drain_seconds=30)
    server.handle_exit(signal.SIGTERM, None)
    server.handle_exit(signal.SIGTERM, None)
    thread.join(5)
    assert not thread.is_alive()


def test_no_drain_stops_as_uvicorn_does():
    server, thread, port = start(drain_seconds=0)
    server.handle_exit(signal.SIGTERM, None)
    thread.join(5)
    assert not thread.is_alive() and not server.draining
