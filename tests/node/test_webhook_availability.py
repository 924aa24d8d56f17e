"""The webhook's own availability on the node: a rolling restart under load, and both replicas down.

Pods created here carry a scheduling gate: they are admitted (and injected) but never scheduled,
so the loop measures admission alone and leaves the node idle.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from localplane import cluster
from localplane.node import images

WEBHOOK = "kube-elector-webhook"


def _gated_pod(opted_in: bool) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{uuid.uuid4().hex[:10]}",
                         "annotations": {"elector.dev/inject": "true"} if opted_in else {}},
            "spec": {"schedulingGates": [{"name": "kube-elector.test/never"}],
                     "containers": [{"name": "app", "image": images.names().python}]}}


class CreateLoop(threading.Thread):
    """Creates an opted-in pod every `interval` s until stopped; counts what was injected and what failed."""

    def __init__(self, client: httpx.Client, namespace: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.client, self.namespace, self.interval = client, namespace, interval
        self.created = self.injected = 0
        self.failures: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            reply = self.client.post(f"/api/v1/namespaces/{self.namespace}/pods", json=_gated_pod(True))
            if reply.status_code == 201:
                self.created += 1
                self.injected += bool(reply.json()["spec"].get("initContainers"))
            else:
                self.failures.append(f"{reply.status_code}: {reply.text[:300]}")
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)


def test_a_rolling_restart_of_the_webhook_fails_no_pod_creation(node_cluster, node_namespace):
    with node_cluster.plane.client() as api:
        loop = CreateLoop(api, node_namespace)
        loop.start()
        try:
            time.sleep(1)
            started = time.monotonic()
            node_cluster.kubectl("rollout", "restart", f"deployment/{WEBHOOK}", "-n", cluster.NAMESPACE)
            node_cluster.kubectl("rollout", "status", f"deployment/{WEBHOOK}", "-n", cluster.NAMESPACE,
                                 "--timeout=180s", timeout=200)
            took = time.monotonic() - started
            time.sleep(2)
        finally:
            loop.stop()
    print(f"webhook rolling restart in {took:.1f} s: {loop.created} opted-in pods created meanwhile, "
          f"{loop.injected} injected, {len(loop.failures)} failed")
    assert loop.created > 50
    assert loop.failures == []
    assert loop.injected == loop.created


def test_with_both_webhook_replicas_down_only_opted_in_pods_are_refused(node_cluster, node_api, node_namespace):
    scale = ("scale", f"deployment/{WEBHOOK}", "-n", cluster.NAMESPACE)
    node_cluster.kubectl(*scale, "--replicas=0")
    try:
        node_cluster.kubectl("wait", "--for=delete", "pod", "-l", f"app.kubernetes.io/name={WEBHOOK}",
                             "-n", cluster.NAMESPACE, "--timeout=60s", timeout=70)
        plain = node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=_gated_pod(False))
        assert plain.status_code == 201, plain.text
        assert "initContainers" not in plain.json()["spec"]
        opted_in = node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=_gated_pod(True))
        assert opted_in.status_code == 500 and "pod.elector.dev" in opted_in.text, opted_in.text
    finally:
        node_cluster.kubectl(*scale, "--replicas=2")
        node_cluster.kubectl("rollout", "status", f"deployment/{WEBHOOK}", "-n", cluster.NAMESPACE,
                             "--timeout=120s", timeout=130)
        node_cluster.wait_webhook_serving()
