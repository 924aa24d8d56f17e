"""The leader Service across nodes (`examples/leader-service`, the direct path: the controller writes the
EndpointSlice): the sample app spread over two nodes, a client pod on the first calling
`http://leader-app-leader/` by name every 10 ms while leadership moves: the leader's elector gets SIGTERM,
the leader pod is deleted, the leader's elector is killed, the Deployment rolls (and again from the
start until pods on both nodes have led). Cluster DNS, kube-proxy and the pod network carry each request
to whichever node leads; the figures (handover to first answer from the new leader) print beside the
node each leader ran on. (`examples/leader-service-label` runs on one node: test_leader_service.py.)
"""

from __future__ import annotations

import signal
import time

import pytest

from demo import routing
from tests.node import apps, nodefaults

pytestmark = pytest.mark.nodes


def test_traffic_by_name_follows_the_leader_from_node_to_node(node_cluster, node_api, node_namespace, tmp_path):
    second = nodefaults.ensure_second_node(node_cluster)
    host = node_cluster.node.name
    node_cluster.kubectl("apply", "-k", routing.overlay(tmp_path, "leader-service", spread_over_nodes=True),
                         "-n", node_namespace)
    apps.wait_agreed_leader(node_api, node_namespace, count=3)

    def placements() -> dict[str, str]:
        return {p["metadata"]["name"]: p["spec"].get("nodeName", "") for p in
                apps.observe.list_pods(node_api, node_namespace, apps.APP_SELECTOR)}

    placed = placements()
    assert set(placed.values()) == {host, second.name}, placed
    lease, log = apps.leader_service_client(node_cluster, node_api, node_namespace, node=host)
    kinds = {
        "SIGTERM to the leader's elector": lambda old: routing.signal_elector(node_api, node_namespace, old,
                                                                              signal.SIGTERM),
        "leader pod deleted": lambda old: node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/{old}"),
        "leader's elector killed": lambda old: routing.signal_elector(node_api, node_namespace, old, signal.SIGKILL),
        "rolling update": lambda old: (
            node_cluster.kubectl("rollout", "restart", "deployment/leader-app", "-n", node_namespace),
            node_cluster.kubectl("rollout", "status", "deployment/leader-app", "-n", node_namespace,
                                 "--timeout=120s", timeout=130)),
    }
    faults: list[tuple[str, float, str]] = []
    led_on = {placed[routing.holder(node_api, node_namespace)]}
    while len(faults) < len(kinds) or (len(led_on) < 2 and len(faults) < 2 * len(kinds)):  # both nodes led
        what, act = list(kinds.items())[len(faults) % len(kinds)]
        old = routing.holder(node_api, node_namespace)
        faults.append((f"{what} ({old} on {placed[old]})", time.time(), old))
        act(old)
        leader = apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=90)
        placed.update(placements())
        led_on.add(placed[leader])
        time.sleep(2)
    answers = log()
    handovers, kept = routing.handovers(answers, faults, lease.holders_after(0), time.time())
    crossed = [h for h in handovers if placed.get(h.old) != placed.get(h.new)]
    for h in handovers:
        reached = f"{h.to_new_leader:.3f} s" if h.to_new_leader is not None else "never"
        print(f"{h.old} ({placed.get(h.old)}) -> {h.new} ({placed.get(h.new)}): first answer from the new leader "
              f"after {reached}; {h.not_leader} answered 503, {h.unanswered} unanswered")
    print(f"across nodes: {len(answers)} requests; all: {routing.summary(handovers)}; "
          f"node to node: {routing.summary(crossed)}; {kept}")

    assert len(answers) > 300 and handovers
    assert all(a.is_leader for a in answers if a.code == 200)
    timeline = lease.holders_after(0)
    assert not routing.served_by_others(answers, timeline), routing.served_by_others(answers, timeline)[:5]
    assert all(h.to_new_leader is not None for h in handovers), handovers
    assert [a.code for a in answers[-20:]] == [200] * 20, answers[-20:]
    # Requests reached pods on both nodes (the client is on the first).
    assert {placed[a.pod] for a in answers if a.code == 200} == {host, second.name}
