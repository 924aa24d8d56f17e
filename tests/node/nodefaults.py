"""What the node-fault tests share: an election spread over two nodes with short timings, and a Lease
watch that keeps every record (holder, renewTime, duration) on the same clock as the checker.

The timings are short so that a test waits seconds, not minutes; the rules are the same at 15 s.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime
from typing import Any

import httpx

from localplane import cluster as cluster_
from localplane.node import node as node_
from tests.node import apps

ELECTION = "fault"
SELECTOR = f"elector.dev/election={ELECTION}"
LEASE_S, RENEW_DEADLINE_S, RETRY_S = 6.0, 4.0, 0.5
TIMINGS = {"elector.dev/election": ELECTION, "elector.dev/lease-duration": "6s",
           "elector.dev/renew-deadline": "4s", "elector.dev/retry-period": "500ms"}
# A pod on a dead or cut-off node is evicted 1 s after the node-lifecycle controller taints it (for pods that a
# controller replaces; a bare pod would be gone for good, even on a node that was NotReady for a moment).
FAST_EVICTION = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}
                 for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]


def mono_to_wall() -> float:
    """Add to a time.monotonic() to get a time.time(): the checker's clock on the Lease's."""
    return time.time() - time.monotonic()


def candidate(name: str, node: str, **spec: Any) -> dict[str, Any]:
    """An opted-in pod of the election, placed on `node` (bypassing the scheduler)."""
    return apps.bare_pod(name, command=apps.SLEEP, annotations=TIMINGS, nodeName=node, **spec)


def start_election(api: httpx.Client, namespace: str, placements: dict[str, str], **spec: Any) -> str:
    """Create the pods in order (the first one leads, as nobody else competes yet); its name."""
    names = list(placements)
    for i, name in enumerate(names):
        reply = api.post(f"/api/v1/namespaces/{namespace}/pods", json=candidate(name, placements[name], **spec))
        assert reply.status_code == 201, reply.text
        if i == 0:
            apps.wait_pod_ready(api, namespace, name)
            apps.wait_agreed_leader(api, namespace, count=1, selector=SELECTOR)
    leader = apps.wait_agreed_leader(api, namespace, count=len(names), selector=SELECTOR)
    assert leader == names[0], f"{names[0]} was alone first, yet {leader} leads"
    return leader


def holder(api: httpx.Client, namespace: str) -> str:
    """The election's Lease holder now ("" if none)."""
    lease = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{ELECTION}").json()
    return lease.get("spec", {}).get("holderIdentity") or ""


def node_ready(api: httpx.Client, name: str) -> bool:
    conditions = api.get(f"/api/v1/nodes/{name}").json().get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def ensure_second_node(running: cluster_.Cluster) -> node_.Node:
    """The cluster's second node, Ready; a new one if a test killed the last."""
    for each in list(running.extra_nodes):
        alive = each.kubelet is not None and each.kubelet.running and each.containerd.running
        if alive:
            return each
        running.remove_node(each)
    return running.add_node()


class LeaseRecords(threading.Thread):
    """Every version of the election's Lease as the API server sends it: (wall time seen, holder,
    renewTime as wall time, leaseDurationSeconds)."""

    def __init__(self, client: httpx.Client, namespace: str, name: str = ELECTION) -> None:
        super().__init__(daemon=True, name=f"lease-records-{name}")
        self.client, self.namespace, self.name = client, namespace, name
        self.records: list[tuple[float, str, float, int]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        params = {"watch": "true", "fieldSelector": f"metadata.name={self.name}", "timeoutSeconds": "600"}
        with contextlib.suppress(httpx.HTTPError), \
                self.client.stream("GET", path, params=params, timeout=None) as stream:
            self.ready.set()
            for line in stream.iter_lines():
                spec = json.loads(line)["object"].get("spec", {})
                renewed = spec.get("renewTime")
                self.records.append((time.time(), spec.get("holderIdentity") or "",
                                     _wall(renewed) if renewed else 0.0, int(spec.get("leaseDurationSeconds") or 0)))

    def last_renewal(self, holder: str) -> tuple[float, int]:
        """(renewTime, leaseDurationSeconds) of holder's last record."""
        mine = [(renewed, seconds) for _, who, renewed, seconds in self.records if who == holder]
        assert mine, f"no Lease record of {holder}: {self.records[-5:]}"
        return mine[-1]


def _wall(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def first_change(history: list[tuple[float, tuple[str, ...]]], after: float,
                 test: Any) -> float | None:
    """The monotonic time of the first checker sweep after `after` for which test(saying) holds."""
    return next((when for when, saying in history if when >= after and test(saying)), None)
