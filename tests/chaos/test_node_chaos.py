"""Node chaos: rounds of node faults on two real nodes, a checker polling every candidate's elector (inside
its pod) every 20 ms for the whole run, never two leaders.

Four candidates, two on each node (tests/node/nodefaults: lease 6 s, renew deadline 4 s, retry 0.5 s).
Before each round the leader is moved to the second node if it is not there (`POST /release`: a
graceful handover), then that node is cut off from the API server and healed, killed outright (and
replaced by a new node with new candidates), or has its kubelet or containerd restarted.

`make chaos` runs CHAOS_NODE_ROUNDS of them (default there: 52). `make test` does not: each fault runs
once in tests/node/test_node_faults.py, with its figures.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable

import pytest

from demo.checker import LeaderChecker
from localplane.node import pods
from tests.chaos import faults
from tests.node import apps, nodefaults

ROUNDS = int(os.environ.get("CHAOS_NODE_ROUNDS", "0"))
NEAR, FAR = ("near-1", "near-2"), ("far-1", "far-2")


class Run:
    """The election over two nodes, and what a round needs to act on it."""

    def __init__(self, cluster, api, namespace: str) -> None:
        self.cluster, self.api, self.namespace = cluster, api, namespace
        self.far_node = nodefaults.ensure_second_node(cluster)
        nodefaults.start_election(api, namespace, {FAR[0]: self.far_node.name, FAR[1]: self.far_node.name,
                                                   NEAR[0]: cluster.node.name, NEAR[1]: cluster.node.name})

    def leader(self, timeout: float = 60) -> str:
        return apps.wait_agreed_leader(self.api, self.namespace, count=4, selector=nodefaults.SELECTOR,
                                       timeout=timeout)

    def lead_from_far_node(self) -> str:
        """`POST /release` to the leader until a candidate on the far node leads (a graceful handover; not
        SIGTERM, whose restarts the kubelet would soon back off)."""
        for _ in range(8):
            leader = self.leader()
            if leader in FAR:
                return leader
            pod = apps.get_pod(self.api, self.namespace, leader)
            code, _ = pods.http_post(pod, 4040, "/release", headers={"Elector-Release": "true"})
            assert code == 202, code
            apps.observe.wait_for(lambda: nodefaults.holder(self.api, self.namespace) not in ("", leader), timeout=30,
                                  interval=0.1, message=f"a leader after {leader}'s release", detail=self.describe)
        raise AssertionError(f"no candidate on {self.far_node.name} took the lead after 8 releases")

    def describe(self) -> str:
        lease = self.api.get(f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{nodefaults.ELECTION}")
        # --request-timeout: a cut-off node's kubelet, which the API server asks for the log, does not answer.
        logs = [f"--- {name}\n" + self.cluster.kubectl("logs", "-n", self.namespace, name, "-c", "elector", "--tail=8",
                                                        "--request-timeout=5s", check=False).stdout
                for name in (*NEAR, *FAR)]
        return "\n".join([lease.text, apps.observe.describe(apps.observe.observe(
            self.api, self.namespace, selector=nodefaults.SELECTOR, with_logs=False)), *logs])

    def replace_far_node(self) -> None:
        """A killed node is gone: a new one takes its place, with new far candidates."""
        self.cluster.remove_node(self.far_node)
        for name in FAR:
            apps.observe.wait_for(lambda n=name: self.api.get(
                f"/api/v1/namespaces/{self.namespace}/pods/{n}").status_code == 404, timeout=30, message=f"{name} gone")
        self.far_node = self.cluster.add_node()
        for name in FAR:
            reply = self.api.post(f"/api/v1/namespaces/{self.namespace}/pods",
                                  json=nodefaults.candidate(name, self.far_node.name))
            assert reply.status_code == 201, reply.text


def cut_off(run: Run) -> None:
    """Until a near candidate holds the Lease, then healed. Not an agreement of all four while cut off: a
    far elector that can reach no API server says it knows no leader (and is not Ready), and the API
    server's view of the far pods is stale. The round's end waits for all four to agree, after the heal;
    the checker looks at every elector the whole time."""
    run.far_node.cut_off()
    try:
        apps.observe.wait_for(lambda: nodefaults.holder(run.api, run.namespace) in NEAR, timeout=30, interval=0.1,
                              message="a near leader while the far node is cut off", detail=run.describe)
    finally:
        run.far_node.heal()


def node_killed(run: Run) -> None:
    run.far_node.kill()
    apps.observe.wait_for(lambda: nodefaults.holder(run.api, run.namespace) in NEAR, timeout=30,
                          message="a near leader after the kill", interval=0.1)
    run.replace_far_node()


def kubelet_restart(run: Run) -> None:
    run.far_node.kubelet.stop()
    run.far_node.kubelet.start(timeout=60)


def containerd_restart(run: Run) -> None:
    run.far_node.containerd.stop()
    run.far_node.containerd.start(timeout=60)


NODE_FAULTS: dict[str, Callable[[Run], None]] = {
    "leader's node cut off from the API server, then healed": cut_off,
    "leader's node killed (and replaced)": node_killed,
    "kubelet restart on the leader's node": kubelet_restart,
    "containerd restart on the leader's node": containerd_restart,
}


@pytest.mark.chaos
@pytest.mark.nodes
@pytest.mark.timeout(180 + 30 * ROUNDS)  # a round takes 5 to 25 s
@pytest.mark.skipif(ROUNDS == 0, reason="`make chaos` runs the node rounds (CHAOS_NODE_ROUNDS); each node fault "
                                        "runs once in tests/node/test_node_faults.py")
def test_node_chaos_rounds_never_show_two_leaders(node_cluster, node_api, node_namespace):
    run = Run(node_cluster, node_api, node_namespace)
    rng = random.Random(os.environ.get("CHAOS_SEED", uuid.uuid4().hex))
    kinds = list(NODE_FAULTS)
    plan = [kinds[i % len(kinds)] for i in range(ROUNDS)]
    rng.shuffle(plan)
    gaps: dict[str, list[float]] = {k: [] for k in kinds}
    moves: dict[str, int] = {k: 0 for k in kinds}
    rounds: list[tuple[float, str]] = []
    started_run = time.monotonic()
    with LeaderChecker(node_cluster.plane.client, node_namespace, nodefaults.SELECTOR) as checker:
        for kind in plan:
            before = run.lead_from_far_node()
            time.sleep(1)
            started = time.monotonic()
            rounds.append((started, kind))
            print(f"round {len(rounds)}: {kind} (leader {before})", flush=True)
            NODE_FAULTS[kind](run)
            after = run.leader(timeout=90)
            gaps[kind].append(faults.longest_gap(checker.history, started))
            moves[kind] += after != before
    print(f"\nnode chaos: {len(plan)} rounds in {time.monotonic() - started_run:.0f} s, {checker.sweeps} checker "
          f"sweeps (20 ms), overlaps found: {len(checker.overlaps)}")
    print(f"{'fault':<56}{'rounds':>7}{'leader changed':>16}{'longest leaderless gap (s)':>30}")
    for kind, values in gaps.items():
        if values:
            print(f"{kind:<56}{len(values):>7}{moves[kind]:>16}{max(values):>30.2f}")
    during = [(when, who, next((k for t, k in reversed(rounds) if t <= when), "before the first fault"))
              for when, who in checker.overlaps]
    assert checker.overlaps == [], f"two leaders at once (when, who, during which fault): {during[:5]}"
    # A restart of the kubelet or containerd never moves the leader.
    assert moves["kubelet restart on the leader's node"] == 0 and moves["containerd restart on the leader's node"] == 0
