"""/metrics read by Prometheus's own text parser: every family, its type, histogram shape, no precision lost."""
from __future__ import annotations

import os
import random
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from elector.serve import routes as api
from elector.kube import apimetrics
from elector.election import loop as election
from elector.kube import httpclient
from elector.serve import httpserver
from elector.ops import metrics
from elector.ops import procmetrics
from elector import settings
from elector.serve import status

from tests.elector.elector_fakes import InMemoryLock, LeaseStore

pytestmark = pytest.mark.timeout(30)


def families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_metrics_endpoint_parses_with_the_prometheus_parser(tmp_path):
    registry = apimetrics.ApiMetrics()
    server = await httpserver.serve("127.0.0.1", 0, lambda request: _answer(request))
    port = server.sockets[0].getsockname()[1]
    client = httpclient.Client(f"http://127.0.0.1:{port}", timeout=1, observer=registry.observer(f"127.0.0.1:{port}"))
    assert (await client.request("GET", "/ok")).status == 200
    assert (await client.request("PUT", "/conflict")).status == 409
    server.close()
    await client.close()
    dead = httpclient.Client("http://127.0.0.1:1", timeout=1, observer=registry.observer("127.0.0.1:1"))
    with pytest.raises(httpclient.TransportError, match="ConnectionRefusedError"):
        await dead.request("GET", "/")

    config = settings.ElectionConfig('we"ird\\app', "ns", "pod-a", lease_duration=3, renew_deadline=2, retry_period=0.5)
    elector = election.LeaderElector(config, InMemoryLock(LeaseStore()), rng=random.Random(1))
    routes = api.Api(elector, status.Board(elector.clock), on_release=lambda: None, api_metrics=registry)
    reply = await routes.metrics(httpserver.Request("GET", "/metrics", {}, {}))
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    found = families(reply.body.decode())

    kinds = {name: family.type for name, family in found.items()}
    for name, kind in [("process_cpu_seconds", "counter"), ("process_resident_memory_bytes", "gauge"),
                       ("process_virtual_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                       ("process_max_fds", "gauge"), ("process_start_time_seconds", "gauge"),
                       ("python_info", "gauge"), ("python_gc_collections", "counter"),
                       ("python_gc_objects_collected", "counter"), ("rest_client_requests", "counter"),
                       ("rest_client_request_duration_seconds", "histogram"),
                       ("leader_election_master_status", "gauge"),
                       ("elector_sse_subscribers", "gauge")]:
        assert kinds.get(name) == kind, (name, kinds.get(name))

    requests = {(s.labels["method"], s.labels["code"], s.labels["host"]): s.value
                for s in found["rest_client_requests"].samples}
    assert requests == {("GET", "200", f"127.0.0.1:{port}"): 1, ("PUT", "409", f"127.0.0.1:{port}"): 1,
                        ("GET", "<error>", "127.0.0.1:1"): 1}
    buckets = [s for s in found["rest_client_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["verb"] == "GET" and s.labels["host"] != "127.0.0.1:1"]
    assert [b.labels["le"] for b in buckets][-1] == "+Inf" and len(buckets) == len(apimetrics.BUCKETS) + 1
    assert [b.value for b in buckets] == sorted(b.value for b in buckets) and buckets[-1].value == 1

    start = found["process_start_time_seconds"].samples[0].value
    assert abs(start - (time.time() - _uptime())) < 5  # seconds, not a rounded 1.7e9
    assert found["process_resident_memory_bytes"].samples[0].value > 5e6
    assert 3 <= found["process_open_fds"].samples[0].value <= found["process_max_fds"].samples[0].value
    info = found["python_info"].samples[0].labels
    assert info["implementation"] == "CPython" and info["major"] == "3"
    assert found["leader_election_master_status"].samples[0].labels["name"] == 'we"ird\\app'


async def _answer(request: httpserver.Request) -> httpserver.Reply:
    return httpserver.text_reply("ok\n", 409 if request.path == "/conflict" else 200)


def _uptime() -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
        started = procmetrics.parse_stat(stat.read())["starttime"] / ticks
        return float(uptime.read().split()[0]) - started


def test_stat_parsing_survives_a_command_with_spaces_and_parentheses():
    fields = ["S"] + [str(n) for n in range(4, 53)]
    parsed = procmetrics.parse_stat("1234 (my (odd) proc) " + " ".join(fields))
    assert parsed == {"utime": 14, "stime": 15, "starttime": 22, "vsize": 23, "rss": 24}


@pytest.mark.parametrize("files, limit", [
    ({"memory.max": "67108864\n"}, 67108864),  # cgroup v2
    ({"memory.max": "max\n"}, None),
    ({"limit_in_bytes": "9223372036854771712\n"}, None),  # cgroup v1 without a limit
    ({"limit_in_bytes": "33554432\n"}, 33554432),
    ({}, None),
])
def test_memory_limit_from_cgroup_v1_or_v2(tmp_path, files, limit):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = (str(tmp_path / "memory.max"), str(tmp_path / "limit_in_bytes"))
    assert procmetrics.memory_limit(paths) == limit
    text = procmetrics.render(limit_files=paths)
    shown = [s.value for f in text_string_to_metric_families(text) if f.name == "elector_memory_limit_bytes"
             for s in f.samples]
    assert shown == ([] if limit is None else [limit])


def test_values_keep_their_precision():
    assert metrics.sample("x", {}, 1764652345.123) == "x 1764652345.123"
    assert metrics.sample("x", {"a": "b"}, 3) == 'x{a="b"} 3'
    assert metrics.sample("x", {}, float("nan")) == "x NaN"
    assert metrics.sample("x", {}, 2.0) == "x 2"
