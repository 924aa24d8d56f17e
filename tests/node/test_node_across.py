"""The leader Service across nodes: the sample app spread over two nodes, a client pod on the first calling
`http://leader-app-leader/` by name every 10 ms while leadership moves (the leader's elector gets SIGTERM,
three times at least, until pods on both nodes have led). Cluster DNS, kube-proxy and the pod network carry each request to whichever node leads;
the figures (handover to first answer from the new leader) print beside the node each leader ran on.
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
    placed = {p["metadata"]["name"]: p["spec"]["nodeName"]
              for p in apps.observe.list_pods(node_api, node_namespace, apps.APP_SELECTOR)}
    assert set(placed.values()) == {host, second.name}, placed
    client = routing.client_pod("client", "http://leader-app-leader/")
    client["spec"]["nodeName"] = host
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=client).raise_for_status()
    apps.wait_pod_ready(node_api, node_namespace, "client")
    lease = apps.LeaseWatch(node_cluster.plane.client(), node_namespace, "leader-app")
    lease.start()
    lease.ready.wait(5)

    def log() -> list[routing.Answer]:
        return routing.parse(node_cluster.kubectl("logs", "-n", node_namespace, "client").stdout)

    apps.observe.wait_for(lambda: any(a.code == 200 for a in log()), timeout=30, message="the leader answers")
    faults: list[tuple[str, float, str]] = []
    led_on = {placed[routing.holder(node_api, node_namespace)]}
    while len(faults) < 3 or (len(led_on) < 2 and len(faults) < 6):  # until both nodes have led
        old = routing.holder(node_api, node_namespace)
        faults.append((f"SIGTERM to {old}'s elector on {placed[old]}", time.time(), old))
        routing.signal_elector(node_api, node_namespace, old, signal.SIGTERM)
        led_on.add(placed[apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=90)])
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
    # Requests reached pods on both nodes (the client is on the first).
    assert {placed[a.pod] for a in answers if a.code == 200} == {host, second.name}
