"""The controller on the real node: elections survive its absence, and what needs it resumes when it returns."""
from __future__ import annotations

import contextlib
import time
import uuid

from demo import observe
from demo.checker import LeaderChecker
from localplane import cluster as cluster_
from tests.node import apps

CONTROLLER = "deployment/kube-elector-controller"


def _scale(node_cluster: cluster_.Cluster, replicas: int) -> None:
    node_cluster.kubectl("-n", cluster_.NAMESPACE, "scale", CONTROLLER, f"--replicas={replicas}")
    if replicas:
        node_cluster.kubectl("-n", cluster_.NAMESPACE, "rollout", "status", CONTROLLER, "--timeout=120s",
                             timeout=130)
    else:
        node_cluster.kubectl("-n", cluster_.NAMESPACE, "wait", "--for=delete", "pod",
                             "-l", "app.kubernetes.io/name=kube-elector-controller", "--timeout=60s", timeout=70)


@contextlib.contextmanager
def controller_down(node_cluster: cluster_.Cluster):
    _scale(node_cluster, 0)
    try:
        yield
    finally:
        _scale(node_cluster, 2)


def _lease(node_api, namespace: str, name: str) -> dict:
    return node_api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}").json()


def test_elections_go_on_without_the_controller_and_a_new_one_starts_when_it_returns(
        node_cluster, node_api, node_namespace):
    apps.deploy_sample_app(node_cluster, node_namespace, replicas=3)
    leader = apps.wait_agreed_leader(node_api, node_namespace, count=3)
    assert _lease(node_api, node_namespace, "leader-app")["metadata"]["annotations"]["elector.dev/next-leader"]
    newcomers = f"new-{uuid.uuid4().hex[:6]}"
    node_api.post("/api/v1/namespaces", json={"metadata": {"name": newcomers}}).raise_for_status()
    try:
        with controller_down(node_cluster), LeaderChecker(node_cluster.plane.client, node_namespace,
                                                          apps.APP_SELECTOR) as checker:
            # a running election fails over: the leader's pod is deleted, a follower takes over, the
            # Deployment's replacement pod joins (its ServiceAccount is bound already)
            node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/{leader}").raise_for_status()
            second = observe.wait_for(
                lambda: (lambda who: who if who and who != leader else None)(
                    observe.agreed_leader(observe.observe(node_api, node_namespace, selector=apps.APP_SELECTOR,
                                                          with_logs=False))),
                timeout=60, message="a new agreed leader without the controller")
            apps.wait_agreed_leader(node_api, node_namespace, count=3)
            # a new election cannot start: no Lease, no Role; its elector waits, it does not crash-loop
            _wait_account(node_api, newcomers)
            pod = apps.bare_pod("newcomer", command=apps.SLEEP)
            node_api.post(f"/api/v1/namespaces/{newcomers}/pods", json=pod).raise_for_status()
            observe.wait_for(lambda: _elector_running(node_api, newcomers, "newcomer"), timeout=60,
                             message="the newcomer's elector running")
            time.sleep(3)
            assert _lease_missing(node_api, newcomers, "newcomer")
            assert _elector_restarts(node_api, newcomers, "newcomer") == 0
            log = node_cluster.kubectl("logs", "-n", newcomers, "newcomer", "-c", "elector").stdout
            assert log.count("waiting for the kube-elector controller") == 1, log
            back = time.monotonic()
        # the controller is back (controller_down scaled it up and waited for its rollout)
        elected = apps.wait_agreed_leader(node_api, newcomers, count=1, selector="app=newcomer", timeout=60)
        print(f"\nwithout the controller: failover {leader} -> {second}, {checker.summary()}; "
              f"a new election led {time.monotonic() - back:.1f} s after the controller was Ready again")
        assert elected == "newcomer"
        assert checker.overlaps == [], checker.overlaps
        # succession resumes: the hint names a live pod again
        hint = observe.wait_for(
            lambda: _lease(node_api, node_namespace, "leader-app")["metadata"].get("annotations", {}).get(
                "elector.dev/next-leader") not in (None, leader) or None,
            timeout=30, message="the next-leader hint renewed")
        assert hint
    finally:
        node_api.delete(f"/api/v1/namespaces/{newcomers}")


def _wait_account(node_api, namespace: str) -> None:
    observe.wait_for(lambda: node_api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default").status_code
                     == 200 or None, timeout=30, message="the default ServiceAccount")


def _lease_missing(node_api, namespace: str, name: str) -> bool:
    return node_api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}").status_code == 404


def _statuses(node_api, namespace: str, name: str) -> list[dict]:
    pod = apps.get_pod(node_api, namespace, name)
    return [s for s in pod.get("status", {}).get("initContainerStatuses", []) if s["name"] == "elector"]


def _elector_running(node_api, namespace: str, name: str) -> bool | None:
    return any("running" in s.get("state", {}) for s in _statuses(node_api, namespace, name)) or None


def _elector_restarts(node_api, namespace: str, name: str) -> int:
    return sum(s.get("restartCount", 0) for s in _statuses(node_api, namespace, name))
