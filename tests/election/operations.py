"""Helpers for the operations tests: candidate Pods (Pending: no scheduler in a control-plane-only
cluster, but real objects the garbage collector looks up), a Lease watcher, and metric reads."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Optional

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.election.electors import Elector, get_json  # noqa: F401 (re-exported for the tests)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


def make_pods(api: httpx.Client, namespace: str, names: list[str], *, election: str = "app") -> dict[str, str]:
    """Create Pods labelled as the webhook labels candidates; {name: uid}."""
    uids = {}
    for name in names:
        made = api.post(f"/api/v1/namespaces/{namespace}/pods", json={
            "metadata": {"name": name, "labels": {"elector.dev/election": election}},
            "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
        assert made.status_code == 201, made.text
        uids[name] = made.json()["metadata"]["uid"]
    return uids


def delete_pod(api: httpx.Client, namespace: str, name: str) -> float:
    """DELETE the Pod (unscheduled: it goes at once); the monotonic time of the reply."""
    reply = api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    assert reply.status_code == 200, reply.text
    return time.monotonic()


def get_lease(api: httpx.Client, namespace: str, name: str = "app") -> Optional[dict[str, Any]]:
    reply = api.get(f"{LEASES.format(ns=namespace)}/{name}")
    return reply.json() if reply.status_code == 200 else None


def owner_uids(lease: Optional[dict[str, Any]]) -> set[str]:
    return {ref["uid"] for ref in ((lease or {}).get("metadata") or {}).get("ownerReferences") or []}


class LeaseWatch(threading.Thread):
    """Every event of one Lease as the API server sends it: (monotonic time, type, object)."""

    def __init__(self, client: httpx.Client, namespace: str, name: str = "app") -> None:
        super().__init__(daemon=True)
        self.client, self.namespace, self.name = client, namespace, name
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        params = {"watch": "true", "fieldSelector": f"metadata.name={self.name}", "timeoutSeconds": "280"}
        with self.client.stream("GET", LEASES.format(ns=self.namespace), params=params, timeout=None) as stream:
            self.ready.set()
            for line in stream.iter_lines():
                event = json.loads(line)
                self.events.append((time.monotonic(), event["type"], event["object"]))

    def deleted_at(self) -> Optional[float]:
        return next((when for when, kind, _ in self.events if kind == "DELETED"), None)

    def uids(self) -> set[str]:
        return {obj["metadata"]["uid"] for _, _, obj in self.events}


def metric(elector: Elector, name: str, **labels: str) -> float:
    """The sum of the samples of `name` (e.g. rest_client_requests_total) that match `labels`."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{elector.probe_port}/metrics", timeout=2) as reply:  # noqa: S310
        text = reply.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))
