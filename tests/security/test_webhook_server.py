"""Attacks on the webhook's HTTPS server while the real API server sends it admissions.

The webhook runs as its own process (localplane.kube_elector.webhook), with small limits so that small
counts reach them. Each test opens hostile connections, then creates opted-in pods through the API
server and asserts that every one was injected (none refused), and that the hostile ones got their
refusal. Larger counts, with RSS figures: bench/attacks.py.
"""

from __future__ import annotations

import socket
import ssl
import time

import httpx

import pytest

from localplane.kube_elector import webhook as webhook_install

MAX_CONNECTIONS = 40
MAX_HANDSHAKES, HANDSHAKE_TIMEOUT = 20, 3.0
WORKERS = 2  # each process has its own limits
LIMITS = ["--workers", str(WORKERS), "--limits.max-connections", str(MAX_CONNECTIONS), "--limits.head-timeout-seconds", "2",
          "--limits.max-handshakes", str(MAX_HANDSHAKES), "--limits.handshake-timeout-seconds", str(HANDSHAKE_TIMEOUT),
          "--max-body-bytes", str(256 * 1024)]

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def webhook(control_plane, tmp_path_factory):
    hook = webhook_install.install(control_plane, tmp_path_factory.mktemp("webhook"), extra_args=LIMITS)
    yield hook
    hook.stop(drain=False)
    with control_plane.client() as api:
        api.delete(f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}")


def tls_connect(port: int) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))


def answer(sock: ssl.SSLSocket) -> bytes:
    """What the server sends before closing; b"" when it closed (or reset) without a word."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
        pass
    return data


def create_opted_in_pods(api, namespace: str, count: int) -> list[str]:
    """Creates `count` opted-in pods (dry run: nothing to clean up); the errors, if any."""
    errors = []
    for i in range(count):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"p{i}", "annotations": {"elector.dev/inject": "true"}},
               "spec": {"containers": [{"name": "app", "image": "a"}]}}
        response = api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"}, json=pod)
        if response.status_code != 201:
            errors.append(response.text)
        elif not any(c["name"] == "elector" for c in response.json()["spec"].get("initContainers", [])):
            errors.append(f"p{i} not injected")
    return errors


def test_slow_heads_on_three_times_the_cap_refuse_no_pod(webhook, api, namespace):
    hostile = []
    for _ in range(3 * MAX_CONNECTIONS):
        sock = tls_connect(webhook.port)
        sock.sendall(b"POST /mutate HTTP/1.1\r\n")  # a head begun, then one byte now and then
        hostile.append(sock)
    assert create_opted_in_pods(api, namespace, 5) == []
    # every slow one was closed: evicted to make room (nothing said), or 408 at its deadline
    answers = [answer(sock) for sock in hostile]
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers)
    assert any(a.startswith(b"HTTP/1.1 408") for a in answers)
    assert create_opted_in_pods(api, namespace, 3) == []


def test_huge_head_is_431_and_admissions_go_on(webhook, api, namespace):
    sock = tls_connect(webhook.port)
    sock.sendall(b"POST /mutate HTTP/1.1\r\nX-Big: " + b"a" * 60_000 + b"\r\n\r\n")
    assert answer(sock).startswith(b"HTTP/1.1 431")
    assert create_opted_in_pods(api, namespace, 2) == []


def test_oversized_body_is_413_and_admissions_go_on(webhook, api, namespace):
    sock = tls_connect(webhook.port)
    sock.sendall(b"POST /mutate HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
                 + b"{" * 65536)
    assert answer(sock).startswith(b"HTTP/1.1 413")
    assert create_opted_in_pods(api, namespace, 2) == []


def test_silent_tcp_connections_and_idle_keep_alives_refuse_no_pod(webhook, api, namespace):
    silent = [socket.create_connection(("127.0.0.1", webhook.port)) for _ in range(2 * MAX_CONNECTIONS)]
    idle = [tls_connect(webhook.port) for _ in range(2 * MAX_CONNECTIONS)]  # handshake done, then nothing
    try:
        assert create_opted_in_pods(api, namespace, 5) == []
    finally:
        for sock in silent + idle:
            sock.close()


def half_client_hello() -> bytes:
    """The first half of a real ClientHello: a handshake begun, then stalled."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(incoming, outgoing).do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True if the server closed (or reset) `sock` within `wait` seconds."""
    sock.settimeout(max(wait, 0.001))
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, socket.timeout):
        return False


def test_silent_and_stalled_handshakes_are_capped_and_timed_out_while_admissions_go_on(webhook, api, namespace):
    """A TLS connection costs memory before its HTTP request exists: issue 23's 2,200 slow TLS clients took
    the webhook to 247 MiB. Beyond `max_handshakes` the oldest handshakes are closed at once (not after
    asyncio's 60 s), every other one at `handshake_timeout_seconds`, and the API server still gets in."""
    started = time.monotonic()
    silent = [socket.create_connection(("127.0.0.1", webhook.port)) for _ in range(4 * MAX_HANDSHAKES)]
    stalled = []
    for _ in range(MAX_HANDSHAKES):
        sock = socket.create_connection(("127.0.0.1", webhook.port))
        sock.sendall(half_client_hello())
        stalled.append(sock)
    hostile = silent + stalled
    cap = WORKERS * MAX_HANDSHAKES
    try:
        # the cap: all but the newest `cap` are closed long before any deadline
        evicted: set[socket.socket] = set()
        while len(evicted) < len(hostile) - cap and time.monotonic() < started + HANDSHAKE_TIMEOUT / 2:
            evicted.update(sock for sock in hostile if sock not in evicted and closed_by_server(sock, 0.01))
        assert len(evicted) >= len(hostile) - cap, f"{len(evicted)} of {len(hostile)} closed"
        # meanwhile a real admission, through the API server, and a client of our own, get their answers
        assert create_opted_in_pods(api, namespace, 3) == []
        assert httpx.get(f"{webhook.url}/healthz", verify=False, timeout=5, trust_env=False).status_code == 200
        # the deadline: every one left is closed at handshake_timeout_seconds (asyncio's default is 60 s)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT + 5
        still_open = [sock for sock in hostile if not closed_by_server(sock, deadline - time.monotonic())]
        assert still_open == [], f"{len(still_open)} handshakes still open after {HANDSHAKE_TIMEOUT + 5:g} s"
        assert create_opted_in_pods(api, namespace, 2) == []
    finally:
        for sock in hostile:
            sock.close()
