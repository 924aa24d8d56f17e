"""A Service that routes to the leader only (issue 15), through kube-proxy's ClusterIP, the label path:
`examples/leader-service-label`: the controller keeps `elector.dev/leader=true` on the leader pod and the
Service selects it (through the EndpointSlice controller). The direct path (`examples/leader-service`, the
controller writes the EndpointSlice) runs across two nodes in tests/node/test_node_across.py.

A client pod requests the Service by its name (cluster DNS) every 10 ms while leadership moves: the leader's elector gets
SIGTERM (the label moves to another pod), the Deployment rolls (the label lands on a new pod). Only the
leader answers 200 (the sample app asks its elector per request); the test records who answered. The
other faults (leader pod deleted, elector killed) run on the direct path, across nodes.
"""

from __future__ import annotations

import signal
import time

import pytest

from demo import routing
from tests.node import apps


@pytest.mark.parametrize("example", ["leader-service-label"])
def test_traffic_follows_the_leader_and_no_other_pod_serves_as_leader(
        example, node_cluster, node_api, node_namespace, tmp_path):
    node_cluster.kubectl("apply", "-k", routing.overlay(tmp_path, example), "-n", node_namespace)
    apps.wait_agreed_leader(node_api, node_namespace, count=3)
    lease, log = apps.leader_service_client(node_cluster, node_api, node_namespace)
    faults: list[tuple[str, float, str]] = []

    def fault(what: str, act) -> None:
        old = routing.holder(node_api, node_namespace)
        faults.append((what, time.time(), old))
        act(old)
        apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=90)
        time.sleep(2)

    fault("SIGTERM to the leader's elector", lambda old: routing.signal_elector(node_api, node_namespace, old, signal.SIGTERM))
    fault("rolling update", lambda old: (
        node_cluster.kubectl("rollout", "restart", "deployment/leader-app", "-n", node_namespace),
        node_cluster.kubectl("rollout", "status", "deployment/leader-app", "-n", node_namespace, "--timeout=120s",
                             timeout=130)))
    answers = log()
    end = time.time()

    handovers, kept = routing.handovers(answers, faults, lease.holders_after(0), end)
    for line in kept:
        print(f"{example}: {line}")
    for h in handovers:
        reached = f"{h.to_new_leader:.3f} s" if h.to_new_leader is not None else "never"
        print(f"{example}: {h.what}: {h.old} -> {h.new}: first answer from the new leader after {reached}; "
              f"{h.not_leader} answered 503 (not the leader), {h.unanswered} unanswered")
    print(f"{example}: {len(answers)} requests; {routing.summary(handovers)}")

    assert len(answers) > 500 and handovers
    assert all(a.is_leader for a in answers if a.code == 200)  # only the leader serves
    assert not any(a.is_leader for a in answers if a.code == 503)
    # Each 200 came from the pod that held the Lease then (the watch started before the first request).
    timeline = lease.holders_after(0)
    assert timeline and not routing.served_by_others(answers, timeline), routing.served_by_others(answers, timeline)[:5]
    assert all(h.to_new_leader is not None for h in handovers), handovers
    assert [a.code for a in answers[-20:]] == [200] * 20, answers[-20:]
