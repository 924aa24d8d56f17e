"""Elector processes on the local plane for the benchmarks: credentials with exactly an elector's rights,
and threads that timestamp what candidates announce (SSE) and what the Lease does (a watch).

The processes themselves are `localplane.kube_elector.electors.Elector` (`python -m elector` with the
injected container's flags), so the benchmarks run exactly what the acceptance tests run.

Rights (docs/security.md): an elector may only get, update and watch its own election's Lease, by name.
The kube-elector controller makes, per election, Role and RoleBinding `kube-elector-lease-<election>` and
the Lease itself; `grant` makes the same objects (controller/rbac.py's bodies) with the admin client,
owned by nothing (they last until the namespace goes), so that a benchmark of the electors needs no
controller and no candidate Pods.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterable, Optional

from controller import rbac
from localplane.kube_elector.electors import Elector, free_port, wait_for  # noqa: F401 (re-exported)

DEFAULT_TIMINGS = ["--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"]  # client-go's
ROLES = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"
BINDINGS = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


def allow(api: Any, namespace: str, election: str, accounts: Iterable[str]) -> None:
    """What the controller makes for `election`: its Role (get, update, watch of the one Lease), a
    RoleBinding for the ServiceAccounts `accounts` (added to the subjects if it exists) and the Lease,
    free. Idempotent."""
    accounts = sorted(set(accounts))
    name = rbac.role_name(election)
    made = api.post(ROLES.format(ns=namespace), json=rbac.role(namespace, election, []))
    if made.status_code not in (201, 409):
        made.raise_for_status()
    role = api.get(f"{ROLES.format(ns=namespace)}/{name}").raise_for_status().json()
    url = f"{BINDINGS.format(ns=namespace)}/{name}"
    found = api.get(url)
    if found.status_code == 404:
        api.post(BINDINGS.format(ns=namespace), json=rbac.role_binding(namespace, election, accounts, role)
                 ).raise_for_status()
    else:
        binding = found.raise_for_status().json()
        have = {s["name"] for s in binding.get("subjects") or []}
        if not set(accounts) <= have:
            body = rbac.role_binding(namespace, election, sorted(have | set(accounts)), role)
            body["metadata"]["resourceVersion"] = binding["metadata"]["resourceVersion"]
            api.put(url, json=body).raise_for_status()
    if api.get(f"{LEASES.format(ns=namespace)}/{election}").status_code == 404:
        made = api.post(LEASES.format(ns=namespace), json=rbac.lease(namespace, election, role))
        if made.status_code not in (201, 409):
            made.raise_for_status()


def grant(plane: Any, api: Any, namespace: str, service_account: str, path: Path,
          elections: Iterable[str] = ()) -> Path:
    """ServiceAccount `service_account` in `namespace` with the rights of a candidate of each of
    `elections` (allow); returns a kubeconfig with its token. More elections later: `allow`."""
    made = api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": service_account}})
    if made.status_code not in (201, 409):
        made.raise_for_status()
    for election in elections:
        allow(api, namespace, election, [service_account])
    return plane.write_kubeconfig(path, token=plane.token(namespace, service_account, seconds=6 * 3600))


class Announcements(threading.Thread):
    """Reads one candidate's /sse until the process goes away; events are (monotonic time, payload)."""

    def __init__(self, elector: Elector) -> None:
        super().__init__(daemon=True)
        self.elector = elector
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.start()

    def run(self) -> None:
        try:
            with urllib.request.urlopen(f"{self.elector.url}sse", timeout=None) as stream:  # noqa: S310 (loopback)
                for line in stream:
                    if line.startswith(b"data: "):
                        self.events.append((time.monotonic(), json.loads(line[6:])))
        except OSError:
            pass

    def first(self, after: float, **match: Any) -> Optional[float]:
        """Time of the first event after `after` whose payload has every key=value in match."""
        return next((t for t, p in list(self.events) if t >= after and all(p.get(k) == v for k, v in match.items())),
                    None)


class LeaseWatch(threading.Thread):
    """The bench's own watch of the Leases in a namespace: (monotonic time, name, holderIdentity)."""

    def __init__(self, plane: Any, namespace: str) -> None:
        super().__init__(daemon=True)
        self.plane, self.namespace = plane, namespace
        self.changes: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self.start()

    def run(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        while not self._stop.is_set():
            with self.plane.client(timeout=None) as api:
                with api.stream("GET", path, params={"watch": "true", "timeoutSeconds": "60"}) as response:
                    for line in response.iter_lines():
                        obj = json.loads(line).get("object") or {}
                        holder = (obj.get("spec") or {}).get("holderIdentity") or ""
                        self.changes.append((time.monotonic(), obj["metadata"]["name"], holder))
                        if self._stop.is_set():
                            return

    def stop(self) -> None:
        self._stop.set()

    def holder_since(self, name: str, holder: str, after: float) -> Optional[float]:
        return next((t for t, n, h in list(self.changes) if t >= after and n == name and h == holder), None)

