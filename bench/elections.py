"""Elector processes on the local plane for the benchmarks: credentials as the webhook grants them,
and threads that timestamp what candidates announce (SSE) and what the Lease does (a watch).

The processes themselves are `tests.election.electors.Elector` (`python -m elector` with the
injected container's flags), so the benchmarks run exactly what the acceptance tests run.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

from bench import common
from tests.election.electors import Elector, free_port, wait_for  # noqa: F401 (re-exported)

RBAC = common.ROOT / "manifests" / "rbac-election.yaml"
DEFAULT_TIMINGS = ["--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"]  # client-go's


def grant(plane: Any, api: Any, namespace: str, service_account: str, path: Path) -> Path:
    """A ServiceAccount bound to kube-elector-election in namespace; returns a kubeconfig with its token."""
    plane.kubectl("apply", "-f", str(RBAC))
    api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", json={"metadata": {"name": service_account}})
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"kube-elector-{service_account}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-elector-election"},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }
    api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding)
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

