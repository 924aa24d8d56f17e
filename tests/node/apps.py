"""What the node tests deploy and wait for: the sample app, bare opted-in pods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from demo import observe, routing
from localplane import cluster as cluster_
from localplane.node import images

APP_SELECTOR = observe.APP_SELECTOR
wait_agreed_leader = observe.wait_agreed_leader
LeaseWatch = observe.LeaseWatch
# A container's main process is PID 1 of its own PID namespace: without a handler, SIGTERM does nothing.
ON_SIGTERM_EXIT = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
SLEEP = ["python3", "-c", ON_SIGTERM_EXIT + "time.sleep(3600)"]


def deploy_sample_app(the_cluster: cluster_.Cluster, namespace: str, *, replicas: int = 3) -> None:
    """`kubectl apply -k localplane/overlays/leader-app` (examples/leader-app on the local image)."""
    the_cluster.kubectl("apply", "-k", str(cluster_.OVERLAYS / "leader-app"), "-n", namespace)
    if replicas != 3:
        the_cluster.kubectl("scale", "deployment/leader-app", f"--replicas={replicas}", "-n", namespace)


def leader_service_client(the_cluster: cluster_.Cluster, api: httpx.Client, namespace: str, *,
                          node: str = "") -> tuple[observe.LeaseWatch, Callable[[], list[routing.Answer]]]:
    """A client pod (on `node` if given) requesting `http://leader-app-leader/` by name every 10 ms, as an
    app would (cluster DNS, then kube-proxy), once the leader answers; the sample app's Lease watch, and a
    reader of the client's answers so far."""
    client = routing.client_pod("client", "http://leader-app-leader/")
    if node:
        client["spec"]["nodeName"] = node
    api.post(f"/api/v1/namespaces/{namespace}/pods", json=client).raise_for_status()
    wait_pod_ready(api, namespace, "client")
    lease = observe.LeaseWatch(the_cluster.plane.client(), namespace, "leader-app")
    lease.start()
    lease.ready.wait(5)

    def answers() -> list[routing.Answer]:
        return routing.parse(the_cluster.kubectl("logs", "-n", namespace, "client").stdout)

    observe.wait_for(lambda: any(a.code == 200 for a in answers()), timeout=30, message="the leader answers")
    return lease, answers


def bare_pod(name: str, *, command: list[str], annotations: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    """An opted-in pod running `command` in the local Python image, restricted-profile compliant."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name},
                     "annotations": {"elector.dev/inject": "true", **(annotations or {})}},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "app", "image": images.names().python, "imagePullPolicy": "Never", "command": command,
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
            **spec,
        },
    }


def get_pod(api: httpx.Client, namespace: str, name: str) -> dict[str, Any]:
    reply = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


def wait_pod_ready(api: httpx.Client, namespace: str, name: str, *, timeout: float = 60) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        pod = get_pod(api, namespace, name)
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        return pod if conditions.get("Ready") == "True" else None

    return observe.wait_for(ready, timeout=timeout, interval=0.1, message=f"pod {namespace}/{name} Ready",
                            detail=lambda: str(get_pod(api, namespace, name).get("status")))


def wait_terminated(api: httpx.Client, namespace: str, name: str, *, timeout: float = 30) -> dict[str, Any]:
    """Until the kubelet reports every container of the pod terminated; the pod as it is then."""
    def terminated() -> dict[str, Any] | None:
        pod = get_pod(api, namespace, name)
        status = pod.get("status", {})
        states = [s.get("state", {}) for s in [*status.get("initContainerStatuses", []),
                                                *status.get("containerStatuses", [])]]
        return pod if states and all("terminated" in s for s in states) else None

    return observe.wait_for(terminated, timeout=timeout, interval=0.1, message=f"{namespace}/{name} terminated",
                            detail=lambda: str(get_pod(api, namespace, name).get("status")))
