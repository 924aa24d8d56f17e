"""Upgrade from 0.1 (RoleBindings made by the webhook) to this release, and uninstall, on the real node.

0.1 is built from this repository's own history and installed from its own manifests/, as a user had it
(localplane/kube_elector/release.py). The upgrade runs under a stream of opted-in pod creations (server-side
dry runs: each one goes through the webhook), with a checker on every elector. The module leaves this
release installed, as the session fixture made it.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from demo import observe
from demo.checker import LeaderChecker
from localplane import cluster as cluster_
from localplane.kube_elector import release
from tests.node import apps

pytestmark = pytest.mark.timeout(900)
RBAC = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{kind}"


@pytest.fixture(scope="module")
def release_0_1(node_cluster, tmp_path_factory) -> Path:
    """0.1's images on the node, and an overlay of 0.1's manifests/ with them (the path to apply -k)."""
    return release.overlay(node_cluster, tmp_path_factory.mktemp("release-0.1"))


def _uninstall(node_cluster: cluster_.Cluster, overlay: Path) -> None:
    node_cluster.kubectl("delete", "-k", str(overlay), "--ignore-not-found", "--wait=true", timeout=300)


def _install_overlay(node_cluster: cluster_.Cluster, overlay: Path, deployments: tuple[str, ...]) -> None:
    """Apply, then wait as an operator would: the rollouts done and the old webhook pods gone (a replica
    still terminating keeps serving the connections the API server has open to it for a few seconds)."""
    node_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(overlay), timeout=120)
    for name in deployments:
        node_cluster.kubectl("-n", cluster_.NAMESPACE, "rollout", "status", f"deployment/{name}",
                             "--timeout=180s", timeout=190)
    current = _template_hash(node_cluster)
    with node_cluster.plane.client() as api:
        observe.wait_for(lambda: all(p["metadata"]["labels"].get("pod-template-hash") == current
                                     for p in observe.list_pods(api, cluster_.NAMESPACE,
                                                                "app.kubernetes.io/name=kube-elector-webhook")) or None,
                         timeout=60, message="the old webhook pods gone")
    node_cluster.wait_webhook_serving(timeout=60)


def _template_hash(node_cluster: cluster_.Cluster) -> str:
    """The pod-template-hash of the webhook Deployment's current ReplicaSet."""
    sets = json.loads(node_cluster.kubectl("-n", cluster_.NAMESPACE, "get", "replicaset", "-o", "json", "-l",
                                           "app.kubernetes.io/name=kube-elector-webhook").stdout)["items"]
    current = max(sets, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))
    return current["metadata"]["labels"]["pod-template-hash"]


class Creations(threading.Thread):
    """Opted-in pod creations (server-side dry run, so each one calls the webhook) every `interval` s."""

    def __init__(self, node_cluster: cluster_.Cluster, namespace: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="creations")
        self.cluster, self.namespace, self.interval = node_cluster, namespace, interval
        self.sent, self.failed = 0, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        pod = apps.bare_pod("load", command=apps.SLEEP)
        with self.cluster.plane.client() as api:
            while not self._stop_event.wait(self.interval):
                reply = api.post(f"/api/v1/namespaces/{self.namespace}/pods", params={"dryRun": "All"}, json=pod)
                self.sent += 1
                injected = reply.status_code == 201 and any(
                    c["name"] == "elector" for c in reply.json()["spec"].get("initContainers", []))
                if not injected:
                    self.failed.append(f"{reply.status_code}: {reply.text[:200]}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def _why_bindings_stay(node_cluster, node_api, namespace: str) -> str:
    items = node_api.get(RBAC.format(ns=namespace, kind="rolebindings")).json()["items"]
    made = [(b["metadata"]["name"], b["metadata"]["creationTimestamp"],
             [f["manager"] for f in b["metadata"].get("managedFields", [])]) for b in items]
    pods = [(p["metadata"]["name"], p["metadata"].get("annotations", {}).get("elector.dev/injected"),
             [c["image"] for c in p["spec"].get("initContainers", [])], p["metadata"]["creationTimestamp"])
            for p in observe.list_pods(node_api, namespace)]
    hooks = [(p["metadata"]["name"], p["spec"]["containers"][0]["image"], p["status"].get("phase"),
              p["metadata"].get("deletionTimestamp")) for p in observe.list_pods(
                  node_api, cluster_.NAMESPACE, "app.kubernetes.io/name=kube-elector-webhook")]
    pods.append(("webhooks", hooks))
    logs = node_cluster.kubectl("-n", cluster_.NAMESPACE, "logs", "-l", "app.kubernetes.io/name=kube-elector-controller",
                                "--tail=40", "--prefix", check=False).stdout
    return f"bindings: {made}\npods: {pods}\ncontroller:\n{logs}"


def _bindings(node_api, namespace: str, kind: str = "rolebindings") -> list[str]:
    return sorted(i["metadata"]["name"] for i in node_api.get(RBAC.format(ns=namespace, kind=kind)).json()["items"])


def test_upgrade_from_0_1_under_load_keeps_one_leader_and_fails_no_creation(node_cluster, node_api,
                                                                            node_namespace, release_0_1):
    current = cluster_.OVERLAYS / "kube-elector"
    try:
        _uninstall(node_cluster, current)
        _install_overlay(node_cluster, release_0_1, ("kube-elector-webhook",))
        apps.deploy_sample_app(node_cluster, node_namespace, replicas=3)
        apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=120)
        assert "kube-elector-default" in _bindings(node_api, node_namespace)  # 0.1: made by its webhook
        load_ns = f"load-{uuid.uuid4().hex[:6]}"
        node_api.post("/api/v1/namespaces", json={"metadata": {"name": load_ns}}).raise_for_status()
        creations = Creations(node_cluster, load_ns)
        with LeaderChecker(node_cluster.plane.client, node_namespace, apps.APP_SELECTOR) as checker:
            creations.start()
            started = time.monotonic()
            _install_overlay(node_cluster, current, ("kube-elector-webhook", "kube-elector-controller"))
            upgraded = time.monotonic() - started
            # the controller takes the running 0.1 election over: its Role and RoleBinding, the Lease adopted
            lease = observe.wait_for(lambda: (lambda l: l if "elector.dev/election" in (
                l["metadata"].get("labels") or {}) else None)(node_api.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/{node_namespace}/leases/leader-app").json()),
                timeout=60, message="the 0.1 Lease adopted")
            assert lease["spec"]["holderIdentity"]
            assert "kube-elector-lease-leader-app" in _bindings(node_api, node_namespace)
            # the app's pods are re-created by 0.2's webhook: one rolling update
            node_cluster.kubectl("-n", node_namespace, "rollout", "restart", "deployment/leader-app")
            node_cluster.kubectl("-n", node_namespace, "rollout", "status", "deployment/leader-app",
                                 "--timeout=180s", timeout=190)
            leader = apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=120)
            # no pod injected by 0.1 is left: its RoleBindings go
            observe.wait_for(lambda: _bindings(node_api, node_namespace) == ["kube-elector-lease-leader-app"] or None,
                             timeout=90, message="0.1's RoleBindings deleted",
                             detail=lambda: _why_bindings_stay(node_cluster, node_api, node_namespace))
            creations.stop()
        print(f"\nupgrade 0.1 -> 0.2: applied and rolled out in {upgraded:.1f} s; {creations.sent} opted-in pod "
              f"creations during the upgrade and the app's rollout, {len(creations.failed)} failed; "
              f"{checker.summary()}")
        assert creations.sent > 50 and creations.failed == []
        assert checker.overlaps == []
        pods = observe.list_pods(node_api, node_namespace, apps.APP_SELECTOR)
        assert {p["metadata"]["annotations"]["elector.dev/injected"] for p in pods} == {"0.2.0"}
        assert leader in {p["metadata"]["name"] for p in pods}
    finally:
        creations_ns = locals().get("load_ns")
        if creations_ns:
            node_api.delete(f"/api/v1/namespaces/{creations_ns}")
        if node_api.get(f"/apis/apps/v1/namespaces/{cluster_.NAMESPACE}/deployments/kube-elector-controller"
                        ).status_code != 200:
            _uninstall(node_cluster, release_0_1)
            node_cluster.install_kube_elector()


def test_uninstall_leaves_running_elections_up_and_nothing_behind_after_the_last_pod(node_cluster, node_api,
                                                                                       node_namespace):
    apps.deploy_sample_app(node_cluster, node_namespace, replicas=3)
    leader = apps.wait_agreed_leader(node_api, node_namespace, count=3)
    current = cluster_.OVERLAYS / "kube-elector"
    roles = RBAC.format(ns=node_namespace, kind="roles")
    try:
        with LeaderChecker(node_cluster.plane.client, node_namespace, apps.APP_SELECTOR) as checker:
            _uninstall(node_cluster, current)
            assert node_api.get(f"/api/v1/namespaces/{cluster_.NAMESPACE}").status_code == 404
            # the election goes on: its Role, RoleBinding and Lease are the namespace's own
            assert _bindings(node_api, node_namespace, "roles") == ["kube-elector-lease-leader-app"]
            # a failover still works (the replacement pod is not injected any more: no webhook)
            node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/{leader}").raise_for_status()
            after = observe.wait_for(
                lambda: (lambda who: who if who and who != leader else None)(observe.agreed_leader(
                    observe.observe(node_api, node_namespace, selector="elector.dev/election=leader-app",
                                    with_logs=False))),
                timeout=60, message="a new leader after the uninstall")
        assert checker.overlaps == []
        print(f"\nafter uninstall: failover {leader} -> {after}; {checker.summary()}")
        # the last pod of the election goes: the garbage collector removes the Role, then RoleBinding and Lease
        node_cluster.kubectl("-n", node_namespace, "delete", "deployment/leader-app", "--wait=true")
        gone = time.monotonic()
        observe.wait_for(lambda: (not node_api.get(roles).json()["items"]
                                  and not _bindings(node_api, node_namespace)
                                  and node_api.get(f"/apis/coordination.k8s.io/v1/namespaces/{node_namespace}/"
                                                   "leases/leader-app").status_code == 404) or None,
                         timeout=90, message="Role, RoleBinding and Lease collected")
        print(f"collected {time.monotonic() - gone:.1f} s after the last pod was deleted")
        leftovers = [c["metadata"]["name"] for c in node_api.get(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles").json()["items"]
            if c["metadata"]["name"].startswith("kube-elector")]
        assert leftovers == []
    finally:
        node_cluster.install_kube_elector()
