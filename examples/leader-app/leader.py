"""The sample app: log whether this replica is the leader, as the elector sidecar says.

Follows the Server-Sent Events stream at $ELECTOR_SSE_URL; without it (an old injector) it polls
http://$ELECTOR_PATH, as old clients of the NAIS elector do. Python standard library only, so it runs
on the stock `python:3.12-slim` image with this file mounted from a ConfigMap.

Each line: `<time> <hostname>: leader|follower (...)`, printed at start and on every change.

It also serves HTTP on $HTTP_PORT (8080), for a Service that routes to the leader only
(examples/leader-service): each request asks the elector, and only the leader answers 200
`{"pod": ..., "is_leader": true}`; any other replica answers 503, so a request that reaches a pod
that is no longer the leader is never served as if by the leader.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

HOSTNAME = os.environ.get("HOSTNAME") or socket.gethostname()


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {HOSTNAME}: {message}", flush=True)


class Follower:
    def __init__(self) -> None:
        self.role: str | None = None
        self.leader: str | None = None

    def update(self, status: dict) -> None:
        """`is_leader` if the elector sends it; else compare the leader's name with our hostname (NAIS)."""
        leader = status.get("name")
        is_leader = status.get("is_leader")
        if is_leader is None:
            is_leader = leader == HOSTNAME
        role = "leader" if is_leader else "follower"
        if (role, leader) != (self.role, self.leader):
            self.role, self.leader = role, leader
            if is_leader:
                say(f"leader (term {status.get('term', '?')})")
            else:
                say(f"follower (leader is {leader or 'not known yet'})")


def follow_sse(url: str, follower: Follower) -> None:
    """Read `data: {json}` events until the stream ends (raises on connection errors)."""
    request = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=60) as stream:
        data: list[str] = []
        for raw in stream:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif not line and data:  # a blank line ends an event
                follower.update(json.loads("\n".join(data)))
                data = []


def poll(url: str, follower: Follower, period: float = 1.0) -> None:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                follower.update(json.load(response))
        except (OSError, ValueError) as exc:
            say(f"poll {url}: {exc}")
        time.sleep(period)


class LeaderOnly(http.server.BaseHTTPRequestHandler):
    """GET / answers 200 on the leader, 503 elsewhere, as the elector says at that moment."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        url = os.environ.get("ELECTOR_GET_URL") or f"http://{os.environ.get('ELECTOR_PATH', 'localhost:4040')}/"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                status = json.load(response)
        except (OSError, ValueError):
            status = {}
        is_leader = bool(status.get("is_leader", status.get("name") == HOSTNAME))
        body = json.dumps({"pod": HOSTNAME, "is_leader": is_leader, "leader": status.get("name")}).encode()
        self.send_response(200 if is_leader else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # one line per request would drown the role changes


def serve(port: int) -> None:
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), LeaderOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: (say("SIGTERM: stopping"), sys.exit(0)))
    sse_url = os.environ.get("ELECTOR_SSE_URL", "")
    path = os.environ.get("ELECTOR_PATH", "")
    say(f"starting; ELECTOR_SSE_URL={sse_url or '-'} ELECTOR_GET_URL={os.environ.get('ELECTOR_GET_URL', '-')} "
        f"ELECTOR_PATH={path or '-'}")
    serve(int(os.environ.get("HTTP_PORT", "8080")))
    follower = Follower()
    if not sse_url:
        if not path:
            say("no ELECTOR_SSE_URL and no ELECTOR_PATH: is the elector injected? (annotation elector.dev/inject)")
            return 1
        poll(f"http://{path}/", follower)
    backoff = 0.5
    while True:
        try:
            follow_sse(sse_url, follower)
            backoff = 0.5
        except (OSError, ValueError, urllib.error.URLError) as exc:
            say(f"SSE {sse_url}: {exc}; reconnecting in {backoff:.1f} s")
        time.sleep(backoff)
        backoff = min(backoff * 2, 10)


if __name__ == "__main__":
    sys.exit(main())
