"""controller.routing: the leader's EndpointSlice, built from plain dicts."""

from __future__ import annotations

import pytest

from controller import routing as leaderservice

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
