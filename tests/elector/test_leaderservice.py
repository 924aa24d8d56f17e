"""elector.leaderservice: the leader's EndpointSlice, built from plain dicts and kept by a fake API."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Optional

import pytest

from elector import election, httpclient, leaderservice
from tests.elector.elector_fakes import FakeClock, settle

SERVICE = {"metadata": {"name": "web-leader", "namespace": "ns", "uid": "svc-uid"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
ME = {"name": "web-1", "namespace": "ns", "uid": "uid-1", "ip": "10.244.0.11"}
OTHER = {"name": "web-2", "namespace": "ns", "uid": "uid-2", "ip": "10.244.0.12"}
SLICE = "/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices/web-leader-leader"


def test_the_slice_names_the_pod_on_the_services_target_ports():
    body = leaderservice.slice_for(SERVICE, pod=ME)
    assert body["metadata"]["name"] == "web-leader-leader"
    assert body["metadata"]["labels"] == {"kubernetes.io/service-name": "web-leader",
                                          "endpointslice.kubernetes.io/managed-by": leaderservice.MANAGED_BY}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"  # goes with its Service
    assert body["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    (endpoint,) = body["endpoints"]
    assert endpoint["addresses"] == ["10.244.0.11"] and endpoint["targetRef"]["uid"] == "uid-1"
    assert leaderservice.names_pod(body, "uid-1") and not leaderservice.names_pod(body, "uid-2")
    assert leaderservice.slice_for(SERVICE, pod=None)["endpoints"] == []


@pytest.mark.parametrize("spec, problem", [
    ({"selector": {"app": "web"}, "ports": [{"port": 80}]}, "has a selector"),
    ({"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}, "must be a number"),
])
def test_a_service_the_leader_cannot_route_is_named_with_the_reason(spec, problem):
    with pytest.raises(leaderservice.SliceError, match=problem):
        leaderservice.slice_for({"metadata": {"name": "web-leader"}, "spec": spec}, pod=ME)


class FakeApi:
    """The Service and the one EndpointSlice, with resourceVersions and 409s like the API server."""

    def __init__(self) -> None:
        self.slice: Optional[dict[str, Any]] = None
        self.version = 0
        self.writes = 0
        self.before_write: list[Any] = []  # callbacks run before the next write (a racing writer)

    def put(self, body: dict[str, Any]) -> None:
        self.version += 1
        body = json.loads(json.dumps(body))
        body["metadata"]["resourceVersion"] = str(self.version)
        self.slice = body

    async def request(self, method: str, path: str, *, json_body: Any = None, **_: Any) -> httpclient.Response:
        if path.endswith("/services/web-leader"):
            return _reply(200, SERVICE)
        if method == "GET":
            return _reply(200, self.slice) if self.slice else _reply(404, {})
        while self.before_write:
            self.before_write.pop(0)()
        if method == "POST" and self.slice is not None:
            return _reply(409, {})
        if method == "PUT" and json_body["metadata"]["resourceVersion"] != self.slice["metadata"]["resourceVersion"]:
            return _reply(409, {})
        self.writes += 1
        self.put(json_body)
        return _reply(201 if method == "POST" else 200, self.slice)


def _reply(status: int, body: Any) -> httpclient.Response:
    return httpclient.Response(status=status, headers={}, body=json.dumps(body).encode())


def _view(is_leader: bool, token: str) -> election.View:
    return election.View(leader=ME["name"] if is_leader else OTHER["name"], is_leader=is_leader, term=1,
                         fencing_token=token if is_leader else None, valid_until=None, observed=True)


async def _router(api: FakeApi, clock: FakeClock) -> tuple[leaderservice.LeaderService, asyncio.Task[None]]:
    router = leaderservice.LeaderService(api, namespace="ns", service="web-leader", pod=ME, clock=clock,  # type: ignore[arg-type]
                                         retry=1.0)
    return router, asyncio.ensure_future(router.run())


async def test_each_term_routes_the_slice_here_once_and_its_end_leaves_it_for_the_successor():
    api, clock = FakeApi(), FakeClock()
    router, task = await _router(api, clock)
    router.on_view(_view(True, "100"))
    await settle()
    assert leaderservice.names_pod(api.slice, "uid-1") and api.writes == 1
    router.on_view(_view(True, "100"))  # the same term again: nothing to do
    router.on_view(_view(False, ""))  # the term ended: the slice stays until a successor writes it
    await settle()
    assert api.writes == 1 and leaderservice.names_pod(api.slice, "uid-1")
    api.put(leaderservice.slice_for(SERVICE, pod=OTHER))  # the successor took it over
    router.on_view(_view(True, "200"))  # a new term of ours
    await settle()
    assert leaderservice.names_pod(api.slice, "uid-1")
    task.cancel()


async def test_a_racing_write_is_reread_and_retried_at_once():
    api, clock = FakeApi(), FakeClock()
    api.put(leaderservice.slice_for(SERVICE, pod=OTHER))
    api.before_write.append(lambda: api.put(leaderservice.slice_for(SERVICE, pod=None)))  # the old leader clears
    router, task = await _router(api, clock)
    router.on_view(_view(True, "100"))
    await settle()
    assert leaderservice.names_pod(api.slice, "uid-1") and clock.now() == 1000.0  # no retry period waited
    task.cancel()


async def test_at_shutdown_a_successor_gets_a_moment_then_a_slice_still_naming_us_is_emptied():
    api, clock = FakeApi(), FakeClock()
    router, task = await _router(api, clock)
    router.on_view(_view(True, "100"))
    await settle()
    task.cancel()
    done = asyncio.ensure_future(router.hand_over(wait=1.0))
    await clock.advance(0.5)
    assert not done.done() and leaderservice.names_pod(api.slice, "uid-1")
    await clock.advance(0.6)
    await settle()
    assert done.done() and api.slice["endpoints"] == []

    api.put(leaderservice.slice_for(SERVICE, pod=OTHER))  # with a successor, nothing is touched
    writes = api.writes
    await router.hand_over(wait=1.0)
    assert api.writes == writes and leaderservice.names_pod(api.slice, "uid-2")
