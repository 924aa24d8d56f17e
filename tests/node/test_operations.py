"""Operating elections on the real node (issue 12): the Lease survives a rolling update and goes with the
last pod (the controller deletes what it made; the garbage collector would too: the election's Role is
owned by its pods, its RoleBinding and Lease by the Role); the status view and the sidecar's own metrics
from a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from demo import observe
from localplane.node import pods
from tests.node import apps

BIN = Path(sys.executable).parent  # kube-elector-status and kubectl-elector


def _lease(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    reply = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    return reply.json() if reply.status_code == 200 else None


def _role(api: Any, namespace: str, election: str) -> dict[str, Any] | None:
    reply = api.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/kube-elector-lease-{election}")
    return reply.json() if reply.status_code == 200 else None


def _owners(obj: dict[str, Any] | None) -> set[str]:
    return {ref["uid"] for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []}


def _pod_uids(api: Any, namespace: str, selector: str) -> set[str]:
    return {p["metadata"]["uid"] for p in observe.list_pods(api, namespace, selector)
            if not p["metadata"].get("deletionTimestamp")}


def _status_view(cluster: Any, *argv: str) -> str:
    """Run `argv` as the user would, with the cluster's kubeconfig in KUBECONFIG (kubectl takes no flag
    before a plugin's name) and the project's console scripts on PATH."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "KUBECONFIG": str(cluster.kubeconfig)})
    assert done.returncode == 0, done.stderr
    return done.stdout


class Deletions(threading.Thread):
    """Watches pods and Leases of a namespace: the monotonic time of each DELETED event, by (kind, name)."""

    def __init__(self, client: Any, namespace: str) -> None:
        super().__init__(daemon=True)
        self.client, self.namespace = client, namespace
        self.deleted: dict[tuple[str, str], float] = {}
        self.ready = threading.Barrier(3)

    def _follow(self, kind: str, path: str) -> None:
        with self.client.stream("GET", path, params={"watch": "true", "timeoutSeconds": "240"}, timeout=None) as stream:
            self.ready.wait(10)
            for line in stream.iter_lines():
                event = json.loads(line)
                if event["type"] == "DELETED":
                    self.deleted[(kind, event["object"]["metadata"]["name"])] = time.monotonic()

    def run(self) -> None:
        lease = threading.Thread(target=self._follow, daemon=True,
                                 args=("lease", f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"))
        lease.start()
        self._follow("pod", f"/api/v1/namespaces/{self.namespace}/pods")


def test_a_rolling_update_keeps_the_lease_and_the_status_view_shows_it(node_cluster, node_api, node_namespace):
    apps.deploy_sample_app(node_cluster, node_namespace, replicas=3)
    leader = apps.wait_agreed_leader(node_api, node_namespace, count=3)
    assert observe.wait_for(lambda: _owners(_role(node_api, node_namespace, "leader-app"))
                            == _pod_uids(node_api, node_namespace, apps.APP_SELECTOR) or None, timeout=20,
                            message="every pod an owner of the election's Role")
    lease = _lease(node_api, node_namespace, "leader-app")
    lease_uid = lease["metadata"]["uid"]
    assert _owners(lease) == {_role(node_api, node_namespace, "leader-app")["metadata"]["uid"]}

    # the sidecar's own metrics, from inside a pod: its cgroup's limit is the injected 64Mi
    pod = next(p for p in observe.list_pods(node_api, node_namespace, apps.APP_SELECTOR) if p["metadata"]["name"] == leader)
    code, body = pods.http_get(pod, 4041, "/metrics", timeout=2)
    assert code == 200
    found = {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples if not s.labels}
    assert found["elector_memory_limit_bytes"] == 64 * 2**20, found
    print(f"\nthe leader's sidecar: RSS {found['process_resident_memory_bytes'] / 2**20:.1f} MiB of its "
          f"{found['elector_memory_limit_bytes'] / 2**20:.0f} MiB limit, {found['process_open_fds']:.0f} open fds, "
          f"{found['process_cpu_seconds_total']:.2f} s CPU")

    node_cluster.kubectl("rollout", "restart", "deployment/leader-app", "-n", node_namespace)
    node_cluster.kubectl("rollout", "status", "deployment/leader-app", "-n", node_namespace, "--timeout=180s",
                         timeout=200)
    apps.wait_agreed_leader(node_api, node_namespace, count=3)
    # the old pods are gone: only the new ones own the Role, the Lease is the same object
    assert observe.wait_for(lambda: _owners(_role(node_api, node_namespace, "leader-app"))
                            == _pod_uids(node_api, node_namespace, apps.APP_SELECTOR) or None, timeout=30,
                            message="only the new pods own the Role",
                            detail=lambda: str(_role(node_api, node_namespace, "leader-app")))
    assert _lease(node_api, node_namespace, "leader-app")["metadata"]["uid"] == lease_uid

    events = node_cluster.kubectl("get", "events", "-n", node_namespace, "--field-selector",
                                  "reason=LeaderElection").stdout
    assert events.count("became leader") >= 2, events  # the first term, and the handover(s) of the rollout
    table = _status_view(node_cluster, "kube-elector-status", "-n", node_namespace)
    wide = _status_view(node_cluster, str(node_cluster.plane.binaries.kubectl), "elector", "status",
                        "-n", node_namespace, "-o", "wide")
    print(f"\n$ kubectl get events --field-selector reason=LeaderElection\n{events}"
          f"\n$ kube-elector-status -n {node_namespace}\n{table}\n$ kubectl elector status -n {node_namespace} -o wide\n{wide}")
    (row,) = table.splitlines()[1:]
    cells = row.split()
    assert cells[0] == "leader-app" and cells[-2:] == ["3/3", "OK"], table
    assert int(cells[2]) >= 1 and int(cells[-3]) >= 2  # term, transitions


def test_the_last_pod_deleted_takes_the_lease_with_it(node_cluster, node_api, node_namespace):
    election = {"elector.dev/election": "solo"}
    for name in ("solo-a", "solo-b"):
        node_api.post(f"/api/v1/namespaces/{node_namespace}/pods",
                      json=apps.bare_pod(name, command=apps.SLEEP, annotations=election)).raise_for_status()
    leader = apps.wait_agreed_leader(node_api, node_namespace, count=2, selector="elector.dev/election=solo")
    selector = "elector.dev/election=solo"
    assert observe.wait_for(lambda: len(_owners(_role(node_api, node_namespace, "solo"))) == 2 or None,
                            timeout=20, message="both pods own the election's Role")
    watch = Deletions(node_cluster.plane.client(), node_namespace)
    watch.start()
    watch.ready.wait(10)

    first, last = leader, ({"solo-a", "solo-b"} - {leader}).pop()  # the leader goes first: a handover
    node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/{first}").raise_for_status()
    assert observe.wait_for(lambda: ("pod", first) in watch.deleted or None, timeout=30, message=f"{first} gone")
    assert observe.wait_for(lambda: _owners(_role(node_api, node_namespace, "solo"))
                            == _pod_uids(node_api, node_namespace, selector) or None, timeout=10,
                            message="the gone pod no longer owns the Role")
    apps.wait_agreed_leader(node_api, node_namespace, count=1, selector=selector)
    time.sleep(2)
    assert ("lease", "solo") not in watch.deleted and _lease(node_api, node_namespace, "solo") is not None

    node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/{last}").raise_for_status()
    deleted = time.monotonic()
    assert observe.wait_for(lambda: ("lease", "solo") in watch.deleted or None, timeout=30,
                            message="the Lease deleted", detail=lambda: str(_lease(node_api, node_namespace, "solo")))
    pod_gone = watch.deleted[("pod", last)] - deleted
    lease_gone = watch.deleted[("lease", "solo")] - deleted
    print(f"\nlast pod DELETE -> pod object gone (kubelet stopped app and elector) {pod_gone:.3f} s "
          f"-> Lease deleted {lease_gone:.3f} s ({(lease_gone - pod_gone) * 1000:.0f} ms after the pod object)")
    assert 0 <= lease_gone - pod_gone < 5
