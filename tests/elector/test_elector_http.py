"""The I/O layers in-process: HTTP client framing, Lease lock status mapping, the localhost API and probes."""
from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from typing import Any

import pytest

from elector.serve import routes as api
from elector.election import loop as election
from elector.kube import httpclient
from elector.serve import httpserver
from elector.kube import leaselock
from elector.election import lock
from elector.election import record
from elector import settings
from elector.serve import status
from elector.election import clock as clocks

from tests.elector.elector_fakes import InMemoryLock, LeaseStore

pytestmark = pytest.mark.timeout(30)


# ---------------------------------------------------------------- HTTP client framing

async def _feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_chunked_and_length_bodies_and_keep_alive():
    reader = await _feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
    response, keep = await httpclient._read_response(reader)
    assert (response.status, response.body, keep) == (200, b"hello world", True)
    reader = await _feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    response, keep = await httpclient._read_response(reader)
    assert (response.status, response.json(), keep) == (404, {}, False)
    reader = await _feed(b"HTTP/1.1 200 OK\r\n\r\nuntil eof")
    response, keep = await httpclient._read_response(reader)
    assert (response.body, keep) == (b"until eof", False)


async def test_bad_status_line_is_an_error():
    with pytest.raises(ValueError):
        await httpclient._read_response(await _feed(b"SMTP ready\r\n\r\n"))


# ---------------------------------------------------------------- a fake Lease API for LeaseLock

class FakeApi:
    """GET/POST/PUT of one Lease with resourceVersion checks, and a watch stream."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 10
        self.queues: list[asyncio.Queue[dict[str, Any]]] = []
        self.tokens: list[str] = []

    def _store(self, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        self.rv += 1
        obj = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(self.rv), uid="u-1"))
        self.lease = obj
        for queue in self.queues:
            queue.put_nowait({"type": kind, "object": obj})
        return obj

    async def route(self, request: httpserver.Request) -> Any:
        self.tokens.append(request.headers.get("authorization", ""))
        base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"
        if request.path == base and request.query.get("watch") == "true":
            assert request.query["fieldSelector"] == "metadata.name=app"
            return self._watch
        if request.path == base and request.method == "POST":
            if self.lease is not None:
                return httpserver.json_reply({"message": "already exists"}, 409)
            return httpserver.json_reply(self._store(json.loads(request.body), "ADDED"), 201)
        if request.path == f"{base}/app" and request.method == "GET":
            if self.lease is None:
                return httpserver.json_reply({"message": "not found"}, 404)
            return httpserver.json_reply(self.lease)
        if request.path == f"{base}/app" and request.method == "PUT":
            body = json.loads(request.body)
            if self.lease is None or body["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
                return httpserver.json_reply({"message": "the object has been modified"}, 409)
            return httpserver.json_reply(self._store(body, "MODIFIED"))
        return httpserver.json_reply({"message": "forbidden"}, 403)

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues.append(queue)
        if self.lease is not None:
            queue.put_nowait({"type": "ADDED", "object": self.lease})
        try:
            while True:
                event = await queue.get()
                writer.write(json.dumps(event).encode() + b"\n")
                await writer.drain()
                if event.get("type") == "ERROR":
                    return
        finally:
            self.queues.remove(queue)


@pytest.fixture
async def fake_api():
    fake = FakeApi()
    server = await httpserver.serve("127.0.0.1", 0, fake.route)
    port = server.sockets[0].getsockname()[1]
    client = httpclient.Client(f"http://127.0.0.1:{port}", token=lambda: "t0k3n", timeout=5)
    yield fake, leaselock.LeaseLock(client, namespace="ns", name="app")
    await client.close()
    server.close()


def _rec(holder: str) -> record.LeaderElectionRecord:
    now = clocks.MonotonicClock().wall()
    return record.LeaderElectionRecord(holder, 15, now, now, 0)


async def test_lease_lock_maps_statuses_and_carries_resource_versions(fake_api):
    fake, lease = fake_api
    with pytest.raises(lock.LeaseNotFound):
        await lease.get()
    with pytest.raises(lock.LockError):
        await lease.update(_rec("a"))  # nothing read yet
    created = await lease.create(_rec("a"))
    assert created.record.holder_identity == "a" and created.resource_version == "11" and created.uid == "u-1"
    with pytest.raises(lock.LeaseConflict):
        await lease.create(_rec("b"))
    renewed = await lease.update(_rec("a"))
    assert renewed.resource_version == "12"
    fake.lease["metadata"]["resourceVersion"] = "99"  # someone else wrote
    with pytest.raises(lock.LeaseConflict):
        await lease.update(_rec("a"))
    got = await lease.get()
    assert got.resource_version == "99"
    assert fake.tokens and all(token == "Bearer t0k3n" for token in fake.tokens)
    assert fake.lease["spec"]["renewTime"].endswith("Z") and len(fake.lease["spec"]["renewTime"]) == 27


async def test_lease_lock_watch_yields_changes_and_ends_on_error(fake_api):
    fake, lease = fake_api
    await lease.create(_rec("a"))
    seen: list[Any] = []

    async def consume() -> None:
        async for obs in lease.watch():
            seen.append(obs.record.holder_identity if obs else None)

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.1)
    await lease.update(_rec("b"))
    await asyncio.sleep(0.1)
    for queue in fake.queues:
        queue.put_nowait({"type": "DELETED", "object": fake.lease})
        queue.put_nowait({"type": "ERROR", "object": {"message": "too old resource version"}})
    with pytest.raises(lock.LockError, match="too old"):
        await asyncio.wait_for(task, 5)
    assert seen == ["a", "b", None]


async def test_transport_errors_become_lock_errors():
    client = httpclient.Client("http://127.0.0.1:1", timeout=1)
    with pytest.raises(lock.LockError):
        await leaselock.LeaseLock(client, namespace="ns", name="app").get()


# ---------------------------------------------------------------- the localhost API and the probes

@pytest.fixture
async def served():
    """One elector (real clock, short timings) on an in-memory Lease, its API and probe servers."""
    store = LeaseStore()
    config = settings.ElectionConfig("app", "ns", "pod-a", lease_duration=3, renew_deadline=2, retry_period=0.5)
    elector = election.LeaderElector(config, InMemoryLock(store), rng=random.Random(1))
    board = status.Board(elector.clock)
    elector.add_listener(board.publish)
    released: list[bool] = []
    routes = api.Api(elector, board, on_release=lambda: released.append(True), heartbeat=0.2)
    app_server = await httpserver.serve("127.0.0.1", 0, routes.app)
    probe_server = await httpserver.serve("127.0.0.1", 0, routes.probes)
    client = httpclient.Client(f"http://127.0.0.1:{app_server.sockets[0].getsockname()[1]}")
    probes = httpclient.Client(f"http://127.0.0.1:{probe_server.sockets[0].getsockname()[1]}")
    yield {"store": store, "elector": elector, "client": client, "probes": probes, "released": released,
           "routes": routes, "port": app_server.sockets[0].getsockname()[1]}
    for c in (client, probes):
        await c.close()
    app_server.close()
    probe_server.close()


async def test_before_any_result_get_has_no_name_and_readyz_is_503(served):
    response = await served["client"].request("GET", "/")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache"
    assert "name" not in response.json() and response.json()["is_leader"] is False
    assert (await served["probes"].request("GET", "/readyz")).status == 503
    assert (await served["probes"].request("GET", "/healthz")).status == 200


async def test_get_long_poll_sse_release_and_metrics(served):
    elector, client = served["elector"], served["client"]
    runner = asyncio.ensure_future(elector.run())
    try:
        await asyncio.sleep(0.1)
        body = (await client.request("GET", "/")).json()
        assert body["name"] == "pod-a" and body["is_leader"] is True and body["term"] == 0
        assert body["last_update"].endswith("Z") and body["valid_until"].endswith("Z")
        assert (await served["probes"].request("GET", "/readyz")).status == 200
        metrics = (await served["probes"].request("GET", "/metrics")).body.decode()
        assert 'leader_election_master_status{name="app"} 1' in metrics

        # long-poll: returns at once for an old id, waits for a change otherwise
        assert (await client.request("GET", f"/?wait=5s&after={body['id'] - 1}")).json()["id"] == body["id"]
        stale = await asyncio.wait_for(client.request("GET", f"/?wait=30s&after={body['id'] + 1000}"), 3)
        assert stale.json()["id"] == body["id"]  # an id from an earlier process does not block
        slow = await asyncio.wait_for(client.request("GET", f"/?wait=300ms&after={body['id']}"), 3)
        assert slow.json()["id"] == body["id"]
        waiting = asyncio.ensure_future(httpclient.Client(f"http://127.0.0.1:{served['port']}").request(
            "GET", f"/?wait=10s&after={body['id']}"))

        # SSE: current state first, then each change once, in order, plus heartbeats
        lines: list[bytes] = []

        async def sse() -> None:
            async for line in httpclient.Client(f"http://127.0.0.1:{served['port']}").stream_lines(
                    "/sse", idle_timeout=5):
                lines.append(line)

        reader = asyncio.ensure_future(sse())
        await asyncio.sleep(0.5)
        served["store"].put(dict(served["store"].spec, holderIdentity="pod-b", leaseTransitions=1))
        await asyncio.sleep(0.3)
        changed = (await asyncio.wait_for(waiting, 5)).json()
        assert changed["name"] == "pod-b" and changed["is_leader"] is False and changed["id"] > body["id"]
        reader.cancel()
        events = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
        ids = [int(line[4:]) for line in lines if line.startswith(b"id: ")]
        assert [e["name"] for e in events] == ["pod-a", "pod-b"] and ids == [e["id"] for e in events]
        assert b": keep-alive" in lines
        await asyncio.sleep(0.1)
        assert served["routes"].subscribers == 0  # the disconnected client is gone

        assert (await client.request("POST", "/release")).status == 202 and served["released"] == [True]
        assert (await client.request("DELETE", "/")).status == 405
        assert (await client.request("GET", "/nope")).status == 404
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_sse_resumes_after_last_event_id(served):
    elector, store = served["elector"], served["store"]
    runner = asyncio.ensure_future(elector.run())
    try:
        await asyncio.sleep(0.1)
        seen = (await served["client"].request("GET", "/")).json()
        assert seen["name"] == "pod-a"
        store.put(dict(store.spec, holderIdentity="pod-b", leaseTransitions=1))
        await asyncio.sleep(0.1)
        store.put(dict(store.spec, holderIdentity="pod-c", leaseTransitions=2))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", served["port"])
        writer.write(b"GET /sse HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %d\r\n\r\n" % seen["id"])
        data = b""
        while data.count(b"data: ") < 2:
            data += await asyncio.wait_for(reader.read(4096), 3)
        writer.close()
        names = [json.loads(line[6:])["name"] for line in data.split(b"\n") if line.startswith(b"data: ")]
        assert names == ["pod-b", "pod-c"]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


# ---------------------------------------------------------------- the command

@pytest.mark.parametrize("args, env, fragment", [
    (["--election=e"], {}, "--election-namespace"),
    (["--election=e", "--election-namespace=n", "--retry-period=2x"], {}, "--retry-period"),
    (["--election=e", "--election-namespace=n"], {}, "not in a cluster"),
])
def test_bad_config_is_one_line_and_exit_1(args, env, fragment):
    clean = {"PATH": "/usr/bin:/bin", "ELECTOR_SERVICE_ACCOUNT_DIR": "/nonexistent", **env}
    done = subprocess.run([sys.executable, "-m", "elector", *args], env=clean, capture_output=True, text=True,
                          timeout=20)
    assert done.returncode == 1
    assert fragment in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_names_the_flag(tmp_path):
    import socket

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}], "users": [{"name": "u", "user": {}}]}))
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        probe_port = spare.getsockname()[1]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "elector", "--election=e", "--election-namespace=n",
                               f"--kubeconfig={kubeconfig}", f"--http=127.0.0.1:{port}",
                               f"--probe-address=127.0.0.1:{probe_port}"],
                              capture_output=True, text=True, timeout=20)
    assert done.returncode == 1 and done.stderr.startswith("kube-elector: --http: cannot listen"), done.stderr
