"""A fault in a running election on the node, with a checker polling every pod's elector every 20 ms: the
elector process killed inside its pod. (A rolling update, with the same checker, runs over two nodes in
tests/node/test_node_faults.py.)"""

from __future__ import annotations

import os
import signal
import time

from demo import observe
from localplane.node import pods
from tests.node import apps
from demo.checker import LeaderChecker


def _elector_restarts(api, namespace: str, name: str) -> int:
    status = apps.get_pod(api, namespace, name)["status"]
    return next(s["restartCount"] for s in status["initContainerStatuses"] if s["name"] == "elector")


def test_the_kubelet_restarts_a_killed_elector_and_the_app_never_sees_two_leaders(
        node_cluster, node_api, node_namespace):
    apps.deploy_sample_app(node_cluster, node_namespace)
    leader = apps.wait_agreed_leader(node_api, node_namespace, count=3)
    with LeaderChecker(node_cluster.plane.client, node_namespace, apps.APP_SELECTOR) as checker:
        time.sleep(1)
        pod = apps.get_pod(node_api, node_namespace, leader)
        for pid in pods.container_pids(pod)["elector"]:
            os.kill(pid, signal.SIGKILL)  # inside the pod, as an OOM kill or a crash would
        killed = time.monotonic()
        observe.wait_for(lambda: _elector_restarts(node_api, node_namespace, leader) == 1, timeout=60,
                         message="the kubelet restarted the elector sidecar")
        restarted = time.monotonic() - killed
        new_leader = apps.wait_agreed_leader(node_api, node_namespace, count=3, timeout=60)
        recovered = time.monotonic() - killed
        time.sleep(1)
    print(f"elector of {leader} killed: restarted by the kubelet after {restarted:.1f} s, all 3 agree on "
          f"{new_leader} after {recovered:.1f} s; checker: {checker.summary()}")
    assert checker.sweeps > 100 and not checker.errors
    assert checker.overlaps == [], f"two leaders at once: {checker.overlaps[:5]}"
    # The pod itself was not restarted: only its sidecar (the app kept running).
    app = next(s for s in apps.get_pod(node_api, node_namespace, leader)["status"]["containerStatuses"])
    assert app["restartCount"] == 0
