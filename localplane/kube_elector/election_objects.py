"""Helpers for the election tests through the real API server: candidate Pods (bare API objects: no
scheduler or kubelet runs in a control-plane-only cluster, but real objects with real uids that the
kube-elector controller and the garbage collector look up), the per-election rights as the controller
makes them, a Lease watcher, and metric reads."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterable, Mapping, Optional

import httpx
from prometheus_client.parser import text_string_to_metric_families

from controller import rbac
from localplane.kube_elector.electors import Elector, get_json  # noqa: F401 (re-exported for the tests)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
ROLES = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"
BINDINGS = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"
SERVICE_ACCOUNT = "app"
HOLD = "elector.dev/test-hold"  # a finalizer: keeps a deleted pod around, deleting, like a kubelet's grace period
MERGE = {"Content-Type": "application/merge-patch+json"}


def ensure_service_account(api: httpx.Client, namespace: str, name: str = SERVICE_ACCOUNT) -> None:
    made = api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": name}})
    assert made.status_code in (201, 409), made.text


def make_pods(api: httpx.Client, namespace: str, names: Iterable[str], *, election: str = "app",
              service_account: str = SERVICE_ACCOUNT, ready: bool = False,
              labels: Optional[Mapping[str, str]] = None, annotations: Optional[Mapping[str, str]] = None,
              hold: bool = False, owner: Optional[Mapping[str, Any]] = None) -> dict[str, str]:
    """Create candidate Pods as the webhook labels them (`elector.dev/election: <election>`), running as
    `service_account` (created if missing); {name: uid}, the uid to pass as POD_UID.

    `ready`: set status Running + Ready (the controller names only Ready pods as successors);
    `hold`: a finalizer keeps the pod, deleting, after a DELETE; `owner`: a controller ownerReference."""
    if service_account != "default":
        ensure_service_account(api, namespace, service_account)
    uids = {}
    for name in names:
        meta: dict[str, Any] = {"name": name, "labels": {"elector.dev/election": election, **(labels or {})}}
        if annotations:
            meta["annotations"] = dict(annotations)
        if hold:
            meta["finalizers"] = [HOLD]
        if owner is not None:
            meta["ownerReferences"] = [{**owner, "controller": True}]
        made = api.post(f"/api/v1/namespaces/{namespace}/pods", json={
            "metadata": meta,
            "spec": {"serviceAccountName": service_account,
                     "containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
        assert made.status_code == 201, made.text
        uids[name] = made.json()["metadata"]["uid"]
        if ready:
            set_ready(api, namespace, name)
    return uids


def set_ready(api: httpx.Client, namespace: str, name: str, ready: bool = True) -> None:
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}}
    patched = api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", content=json.dumps(status),
                        headers=MERGE)
    assert patched.status_code == 200, patched.text


def release_hold(api: httpx.Client, namespace: str, name: str) -> None:
    """Remove the test's finalizer (a held pod that was deleted then goes)."""
    api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}", content=json.dumps({"metadata": {"finalizers": []}}),
              headers=MERGE)


def delete_pod(api: httpx.Client, namespace: str, name: str, *, force: bool = False) -> float:
    """DELETE the Pod (unscheduled: it goes at once unless held); the monotonic time of the reply."""
    params = {"gracePeriodSeconds": "0"} if force else None
    reply = api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", params=params)
    assert reply.status_code == 200, reply.text
    return time.monotonic()


def grant(api: httpx.Client, namespace: str, election: str, *, accounts: Iterable[str] = (SERVICE_ACCOUNT,),
          lease: bool = True) -> dict[str, Any]:
    """What the controller makes for an election (controller/rbac.py's bodies), made here with the admin
    client: Role `kube-elector-lease-<election>` (get/update/watch of that one Lease), its RoleBinding for
    `accounts`, and the Lease, free (unless it exists, or `lease` is False). Owned by no pod: nothing
    collects them before the namespace goes. Returns the Role."""
    for account in accounts:
        ensure_service_account(api, namespace, account)
    name = rbac.role_name(election)
    made = api.post(ROLES.format(ns=namespace), json=rbac.role(namespace, election, []))
    assert made.status_code in (201, 409), made.text
    role = api.get(f"{ROLES.format(ns=namespace)}/{name}").raise_for_status().json()
    made = api.post(BINDINGS.format(ns=namespace), json=rbac.role_binding(namespace, election, sorted(accounts), role))
    assert made.status_code in (201, 409), made.text
    if lease and api.get(f"{LEASES.format(ns=namespace)}/{election}").status_code == 404:
        made = api.post(LEASES.format(ns=namespace), json=rbac.lease(namespace, election, role))
        assert made.status_code in (201, 409), made.text
    return role


def get_lease(api: httpx.Client, namespace: str, name: str = "app") -> Optional[dict[str, Any]]:
    reply = api.get(f"{LEASES.format(ns=namespace)}/{name}")
    return reply.json() if reply.status_code == 200 else None


def get_role(api: httpx.Client, namespace: str, election: str = "app") -> Optional[dict[str, Any]]:
    reply = api.get(f"{ROLES.format(ns=namespace)}/{rbac.role_name(election)}")
    return reply.json() if reply.status_code == 200 else None


def get_binding(api: httpx.Client, namespace: str, election: str = "app") -> Optional[dict[str, Any]]:
    reply = api.get(f"{BINDINGS.format(ns=namespace)}/{rbac.role_name(election)}")
    return reply.json() if reply.status_code == 200 else None


def annotations(obj: Optional[Mapping[str, Any]]) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def owner_uids(obj: Optional[Mapping[str, Any]]) -> set[str]:
    return {ref["uid"] for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []}


def owners(obj: Optional[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, name, uid) of each ownerReference, sorted."""
    return sorted((r["kind"], r["name"], r["uid"]) for r in ((obj or {}).get("metadata") or {}).get("ownerReferences")
                  or [])


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
