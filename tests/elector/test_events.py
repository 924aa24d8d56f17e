"""Events on the Lease: notes, series aggregation and the rate limit (pure), and the Recorder's writes."""
from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest

from elector import events, httpclient, httpserver, metrics, recorder

from tests.elector.elector_fakes import FakeClock

pytestmark = pytest.mark.timeout(30)
WALL = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("cause, previous, action, note", [
    ("created", "", "Create", "b became leader (term 0): created the Lease"),
    ("released", "a", "Acquire", "b became leader (term 0): a released the Lease"),
    ("released", "", "Acquire", "b became leader (term 0): the Lease was free"),
    ("expired", "a", "TakeOver", "b became leader (term 0): a stopped renewing: its lease expired"),
    ("expired", "b", "Acquire", "b became leader (term 0): took its own Lease back (its earlier term had run out)"),
])
def test_became_leader_notes(cause, previous, action, note):
    spec = events.became_leader("b", term=0, cause=cause, previous=previous)
    assert (spec.action, spec.note, spec.reason, spec.type) == (action, note, "LeaderElection", "Normal")


def test_first_occurrence_is_a_new_event_on_the_lease():
    correlator = events.Correlator(namespace="ns", lease="app", instance="app-1")
    spec = events.became_leader("app-1", term=3, cause="released", previous="app-0")
    decision = correlator.decide(spec, lease_uid="u-1", now=0, wall=WALL)
    assert decision.verb == "create" and decision.name == f"app.{int(WALL.timestamp() * 1e9):x}"
    assert decision.body == {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": decision.name, "namespace": "ns"},
        "eventTime": "2026-05-01T12:00:00.000000Z",
        "reportingController": "kube-elector", "reportingInstance": "app-1",
        "action": "Acquire", "reason": "LeaderElection", "type": "Normal",
        "note": "app-1 became leader (term 3): app-0 released the Lease",
        "regarding": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "namespace": "ns", "name": "app",
                      "uid": "u-1"},
    }


def test_identical_repeats_count_in_a_series_until_the_window_ends():
    correlator = events.Correlator(namespace="ns", lease="app", instance="app-1")
    spec = events.became_leader("app-1", term=0, cause="created", previous="")
    first = correlator.decide(spec, lease_uid="u", now=0, wall=WALL)
    second = correlator.decide(spec, lease_uid="u", now=10, wall=WALL + datetime.timedelta(seconds=10))
    third = correlator.decide(spec, lease_uid="u", now=20, wall=WALL + datetime.timedelta(seconds=20))
    assert (second.verb, second.name) == ("patch", first.name)
    assert second.body == {"series": {"count": 2, "lastObservedTime": "2026-05-01T12:00:10.000000Z"}}
    assert third.body["series"]["count"] == 3
    other = correlator.decide(events.became_leader("app-1", term=1, cause="expired", previous="app-2"),
                              lease_uid="u", now=30, wall=WALL)
    assert other.verb == "create"  # another note: another Event
    later = correlator.decide(spec, lease_uid="u", now=20 + events.SERIES_WINDOW + 1, wall=WALL)
    assert later.verb == "create"  # the series ended
    correlator.forget(later.name)
    assert correlator.decide(spec, lease_uid="u", now=400, wall=WALL).verb == "create"


def test_a_flapping_election_is_rate_limited_and_a_series_keeps_its_count():
    correlator = events.Correlator(namespace="ns", lease="app", instance="p")
    verbs = [correlator.decide(events.became_leader("p", term=n, cause="created", previous=""),
                               lease_uid="u", now=0, wall=WALL).verb for n in range(30)]
    assert verbs == ["create"] * events.BURST + ["drop"] * 5
    spec = events.became_leader("p", term=0, cause="created", previous="")
    assert correlator.decide(spec, lease_uid="u", now=1, wall=WALL).verb == "drop"  # count 2, not sent
    patch = correlator.decide(spec, lease_uid="u", now=1 + events.REFILL_SECONDS, wall=WALL)
    assert patch.verb == "patch" and patch.body["series"]["count"] == 3


class EventsApi:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.status: dict[str, int] = {}

    async def route(self, request: httpserver.Request) -> httpserver.Reply:
        body = json.loads(request.body or b"null")
        self.requests.append((request.method, request.path, body))
        status = self.status.get(request.method, 201 if request.method == "POST" else 200)
        return httpserver.json_reply(body or {}, status)


@pytest.fixture
async def sent():
    api = EventsApi()
    server = await httpserver.serve("127.0.0.1", 0, api.route)
    client = httpclient.Client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=5)
    counters = metrics.Metrics()
    out = recorder.Recorder(client, namespace="ns", lease="app", instance="p", clock=FakeClock(), metrics=counters)
    runner = asyncio.ensure_future(out.run())
    yield api, out, counters
    runner.cancel()
    await client.close()
    server.close()


async def test_recorder_creates_then_patches_and_recreates_an_expired_event(sent):
    api, out, counters = sent
    spec = events.became_leader("p", term=0, cause="created", previous="")
    for _ in range(2):
        out.record(spec, lease_uid="u")
    await asyncio.wait_for(out.flush(), 5)
    assert [(m, p) for m, p, _ in api.requests] == [
        ("POST", "/apis/events.k8s.io/v1/namespaces/ns/events"),
        ("PATCH", f"/apis/events.k8s.io/v1/namespaces/ns/events/{api.requests[0][2]['metadata']['name']}")]
    api.status["PATCH"] = 404  # the event TTL removed it
    out.record(spec, lease_uid="u")
    await asyncio.wait_for(out.flush(), 5)
    assert [m for m, _, _ in api.requests[2:]] == ["PATCH", "POST"]
    assert counters.events == {"created": 2, "patched": 1, "dropped": 0, "failed": 0}


async def test_recorder_turns_itself_off_on_403(sent):
    api, out, counters = sent
    api.status["POST"] = 403
    out.record(events.became_leader("p", term=0, cause="created", previous=""), lease_uid="u")
    await asyncio.wait_for(out.flush(), 5)
    out.record(events.became_leader("p", term=1, cause="created", previous=""), lease_uid="u")
    await asyncio.sleep(0.1)
    assert len(api.requests) == 1 and not out.enabled and counters.events["failed"] == 1
