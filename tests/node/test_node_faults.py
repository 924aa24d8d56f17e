"""Node faults on two real nodes: the leader's node cut off from the API server, killed outright, its
kubelet and containerd restarted, drained; a rolling update over both nodes. A checker polls every
candidate's elector (inside its pod) every 20 ms and a watch keeps every Lease record, on one clock;
figures are printed (`pytest -s`).

The election's timings are short (nodefaults.TIMINGS: lease 6 s, renew deadline 4 s, retry 0.5 s).
The second node is added to the session's cluster for these tests (localplane.cluster.add_node).
"""

from __future__ import annotations

import signal
import time

import pytest

from demo import routing
from demo.checker import LeaderChecker
from tests.node import apps, nodefaults

pytestmark = pytest.mark.nodes


@pytest.fixture
def second_node(node_cluster):
    return nodefaults.ensure_second_node(node_cluster)


@pytest.fixture(scope="module", autouse=True)
def _one_node_after(node_cluster):
    """The tests after these run on the session's one node again (the kill test, last here, leaves a
    dead node)."""
    yield
    for each in list(node_cluster.extra_nodes):
        node_cluster.remove_node(each)


def _watchers(node_cluster, namespace):
    checker = LeaderChecker(node_cluster.plane.client, namespace, nodefaults.SELECTOR)
    lease = nodefaults.LeaseRecords(node_cluster.plane.client(), namespace)
    lease.start()
    assert lease.ready.wait(10)
    return checker, lease


def test_a_cut_off_leader_steps_down_before_its_lease_expires_and_a_pod_elsewhere_leads(
        node_cluster, node_api, node_namespace, second_node):
    host = node_cluster.node.name
    leader = nodefaults.start_election(node_api, node_namespace,
                                       {"far": second_node.name, "near-1": host, "near-2": host})
    checker, lease = _watchers(node_cluster, node_namespace)
    offset = nodefaults.mono_to_wall()
    with checker:
        time.sleep(1)
        cut = time.monotonic()
        second_node.cut_off()
        try:
            successor = apps.observe.wait_for(
                lambda: next((s[0] for _, s in checker.history[-1:] if len(s) == 1 and s[0] != leader), None),
                timeout=30, interval=0.05, message="a leader on the other node")
            took_over = nodefaults.first_change(checker.history, cut, lambda s: successor in s)
            stepped_down = nodefaults.first_change(checker.history, cut, lambda s: leader not in s)
            renewed, seconds = lease.last_renewal(leader)
            time.sleep(2)
        finally:
            second_node.heal()
        healed = time.monotonic()
        # Healed: the old leader comes back as a follower of the new one; nobody leads twice.
        agreed = apps.wait_agreed_leader(node_api, node_namespace, count=3, selector=nodefaults.SELECTOR,
                                         timeout=60)
        time.sleep(2)
    expiry = renewed + seconds
    margin = expiry - (stepped_down + offset)
    failover = (took_over + offset) - expiry
    print(f"\ncut off {second_node.name} (leader {leader}): stepped down {stepped_down - cut:.2f} s after the cut, "
          f"{margin:.2f} s before its Lease could expire; {successor} on {host} led {failover:.2f} s after expiry "
          f"({took_over - cut:.2f} s after the cut); healed: {agreed} leads, "
          f"{time.monotonic() - healed:.1f} s; checker: {checker.summary()}")
    assert checker.overlaps == [], f"two leaders at once: {checker.overlaps[:5]}"
    assert not checker.errors, checker.errors[:3]
    assert margin > 0, f"the cut-off leader said leader until {-margin:.2f} s after its Lease expired"
    assert successor in ("near-1", "near-2") and agreed == successor
    # After expiry, not before: a follower never takes a Lease that is still held.
    assert failover >= 0


def test_kubelet_and_containerd_restarts_on_the_leaders_node_change_no_leader(
        node_cluster, node_api, node_namespace, second_node):
    host = node_cluster.node.name
    leader = nodefaults.start_election(node_api, node_namespace, {"far": second_node.name, "near": host})
    checker, _ = _watchers(node_cluster, node_namespace)
    with checker:
        time.sleep(1)
        started = time.monotonic()
        second_node.kubelet.stop()
        second_node.kubelet.start(timeout=60)
        kubelet_back = time.monotonic() - started
        time.sleep(2)
        started = time.monotonic()
        second_node.containerd.stop()
        second_node.containerd.start(timeout=60)
        containerd_back = time.monotonic() - started
        time.sleep(nodefaults.LEASE_S + 1)  # a Lease that was not renewed meanwhile would have expired
        agreed = apps.wait_agreed_leader(node_api, node_namespace, count=2, selector=nodefaults.SELECTOR)
    print(f"\nkubelet restarted in {kubelet_back:.1f} s, containerd in {containerd_back:.1f} s on "
          f"{second_node.name}: checker: {checker.summary()}")
    assert checker.overlaps == [] and not checker.errors
    assert checker.leaders() == [leader] and agreed == leader, checker.summary()


def _replica_set(node_cluster, namespace: str, node: str, *, replicas: int) -> int:
    """A ReplicaSet of the election that prefers `node` (the scheduler puts its pods there while it lives)."""
    pod = nodefaults.candidate("rs", node, tolerations=nodefaults.FAST_EVICTION)
    spec = pod["spec"]
    del spec["nodeName"]
    spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                        "values": [node]}]}}]}}
    labels = {"app": "rs", "elector.dev/election": nodefaults.ELECTION}
    body = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "rs"}},
                     "template": {"metadata": {"labels": labels, "annotations": pod["metadata"]["annotations"]},
                                  "spec": spec}}}
    with node_cluster.plane.client() as api:
        reply = api.post(f"/apis/apps/v1/namespaces/{namespace}/replicasets", json=body)
        assert reply.status_code == 201, reply.text
    return replicas


def _spread_sample_app(node_cluster, node_api, namespace, tmp_path, *, replicas: int) -> dict[str, str]:
    """The sample app (with its PodDisruptionBudget) spread over both nodes; {pod: node}."""
    node_cluster.kubectl("apply", "-k", routing.overlay(tmp_path, "leader-app", spread_over_nodes=True,
                                                        replicas=replicas), "-n", namespace)
    apps.wait_agreed_leader(node_api, namespace, count=replicas)
    return _placed(node_api, namespace)


def _placed(node_api, namespace) -> dict[str, str]:
    """{pod: node} of the sample app's pods that are not terminating."""
    return {p["metadata"]["name"]: p["spec"]["nodeName"]
            for p in apps.observe.list_pods(node_api, namespace, apps.APP_SELECTOR)
            if not p["metadata"].get("deletionTimestamp")}


def test_draining_the_leaders_node_hands_over_once(node_cluster, node_api, node_namespace, second_node, tmp_path):
    placed = _spread_sample_app(node_cluster, node_api, node_namespace, tmp_path, replicas=2)
    assert sorted(placed.values()) == sorted([node_cluster.node.name, second_node.name]), placed
    leader = routing.holder(node_api, node_namespace)
    if placed[leader] != second_node.name:  # lead from the node to drain: the other replica takes over
        routing.signal_elector(node_api, node_namespace, leader, signal.SIGTERM)
        leader = apps.observe.wait_for(
            lambda: next((h for h in [apps.wait_agreed_leader(node_api, node_namespace, count=2)]
                          if placed.get(h) == second_node.name), None), timeout=60, message="the far pod leads")
    with LeaderChecker(node_cluster.plane.client, node_namespace, apps.APP_SELECTOR) as checker:
        time.sleep(1)
        started = time.monotonic()
        try:
            # --force: bare pods of earlier tests may still be terminating there; the sample app's pods, which
            # a ReplicaSet manages, go through the eviction API and its PodDisruptionBudget all the same.
            node_cluster.kubectl("drain", second_node.name, "--ignore-daemonsets", "--delete-emptydir-data",
                                 "--force", "--timeout=120s", timeout=130)
            drained = time.monotonic() - started
            successor = apps.wait_agreed_leader(node_api, node_namespace, count=2, timeout=90)
        finally:
            node_cluster.kubectl("uncordon", second_node.name)
        time.sleep(1)
    print(f"\ndrained {second_node.name} (leader {leader}) in {drained:.1f} s through the eviction API: "
          f"{successor} on {placed.get(successor)} leads; checker: {checker.summary()}")
    assert checker.overlaps == [] and not checker.errors
    assert checker.leaders() == [leader, successor] and placed[successor] == node_cluster.node.name
    # A graceful release: the successor leads within a release's time, not after the Lease expired.
    assert checker.longest_gap() < nodefaults.LEASE_S, checker.summary()


def test_a_rolling_update_over_two_nodes_changes_the_leader_once(
        node_cluster, node_api, node_namespace, second_node, tmp_path):
    placed = _spread_sample_app(node_cluster, node_api, node_namespace, tmp_path, replicas=3)
    assert len(set(placed.values())) == 2, placed
    with LeaderChecker(node_cluster.plane.client, node_namespace, apps.APP_SELECTOR) as checker:
        started = time.monotonic()
        node_cluster.kubectl("rollout", "restart", "deployment/leader-app", "-n", node_namespace)
        node_cluster.kubectl("rollout", "status", "deployment/leader-app", "-n", node_namespace, "--timeout=180s",
                             timeout=200)
        leader = apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=60)
        took = time.monotonic() - started
        time.sleep(1)
    after = _placed(node_api, node_namespace)
    print(f"\nrolling update of 3 replicas over {sorted(set(after.values()))} in {took:.1f} s: {leader} on "
          f"{after.get(leader)} leads; checker: {checker.summary()}")
    assert checker.overlaps == [] and not checker.errors
    assert checker.moves() == 1, checker.summary()
    assert len(set(after.values())) == 2, after


def test_the_leaders_node_killed_outright_fails_over_within_the_lease_and_replacements_join(
        node_cluster, node_api, node_namespace, second_node):
    host = node_cluster.node.name
    # The node's pods belong to a ReplicaSet, so that the cluster replaces them after the node died. All are
    # evicted 1 s after the node is tainted, so that the dead node's pods leave the count.
    leader = nodefaults.start_election(node_api, node_namespace, {"far": second_node.name, "near": host},
                                       tolerations=nodefaults.FAST_EVICTION)
    replicas = _replica_set(node_cluster, node_namespace, second_node.name, replicas=2)
    apps.wait_agreed_leader(node_api, node_namespace, count=4, selector=nodefaults.SELECTOR, timeout=90)
    checker, lease = _watchers(node_cluster, node_namespace)
    offset = nodefaults.mono_to_wall()
    with checker:
        time.sleep(1)
        killed = time.monotonic()
        second_node.kill()
        took_over = apps.observe.wait_for(
            lambda: nodefaults.first_change(checker.history, killed, lambda s: len(s) == 1 and s[0] != leader),
            timeout=30, interval=0.05, message="a leader after the kill")
        renewed, seconds = lease.last_renewal(leader)
        not_ready = apps.observe.wait_for(lambda: not nodefaults.node_ready(node_api, second_node.name),
                                          timeout=90, interval=0.5, message=f"{second_node.name} NotReady")
        not_ready_after = time.monotonic() - killed
        # The ReplicaSet's pods on the dead node are evicted; their replacements (on the host) join.
        successor = apps.wait_agreed_leader(node_api, node_namespace, count=1 + replicas,
                                            selector=nodefaults.SELECTOR, timeout=120)
        joined_after = time.monotonic() - killed
    failover = took_over - killed
    print(f"\nkilled {second_node.name} (leader {leader}): failover {failover:.2f} s after the kill "
          f"({(took_over + offset) - (renewed + seconds):.2f} s after the Lease's expiry; lease {seconds} s); "
          f"node NotReady after {not_ready_after:.1f} s; {replicas} replacements joined after "
          f"{joined_after:.1f} s, {successor} leads; checker: {checker.summary()}")
    assert not_ready
    assert checker.overlaps == [], f"two leaders at once: {checker.overlaps[:5]}"
    # A kill lands at most one renewal after the last: the Lease ran out within its duration of the kill,
    # and a follower looks every retry period.
    assert failover <= seconds + 2 * nodefaults.RETRY_S + 1.0, f"failover {failover:.2f} s > lease {seconds} s"
    placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in
              apps.observe.list_pods(node_api, node_namespace, nodefaults.SELECTOR)
              if not p["metadata"].get("deletionTimestamp")}
    assert sum(1 for n in placed.values() if n == host) == 1 + replicas, placed
