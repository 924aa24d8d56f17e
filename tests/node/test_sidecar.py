"""The injected native sidecar, as the kubelet runs it: start order, stop order, release on stop."""

from __future__ import annotations

import datetime
import time

from localplane.node import pods
from tests.node import apps

# The app's first act: one request to its elector. If the kubelet started the app before the
# elector's startup probe passed, nothing would listen yet and this would print "failed".
FIRST_REQUEST = apps.ON_SIGTERM_EXIT + """
import os, urllib.request
try:
    with urllib.request.urlopen("http://" + os.environ["ELECTOR_PATH"] + "/", timeout=2) as reply:
        print("first request:", reply.status, flush=True)
except Exception as exc:
    print("first request failed:", exc, flush=True)
time.sleep(3600)
"""


def _started_at(status: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(status["state"]["running"]["startedAt"].replace("Z", "+00:00"))


def _first_line_time(log: str) -> datetime.datetime:
    stamp = log.splitlines()[0].split(" ", 1)[0]  # RFC 3339 with nanoseconds, from `kubectl logs --timestamps`
    return datetime.datetime.fromisoformat(stamp[:26].replace("Z", "") + "+00:00")


def test_the_app_starts_only_after_the_elector_passed_its_startup_probe(node_cluster, node_api, node_namespace):
    created = time.monotonic()
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods",
                  json=apps.bare_pod("order", command=["python3", "-c", FIRST_REQUEST])).raise_for_status()
    pod = apps.wait_pod_ready(node_api, node_namespace, "order")
    print(f"pod create -> Ready on the node: {time.monotonic() - created:.2f} s")

    sidecar = pod["status"]["initContainerStatuses"][0]
    app = pod["status"]["containerStatuses"][0]
    assert (sidecar["name"], sidecar["started"], sidecar["ready"]) == ("elector", True, True)
    assert pod["spec"]["initContainers"][0]["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert _started_at(sidecar) <= _started_at(app)  # second precision: the API's timestamps

    logs = {name: node_cluster.kubectl("logs", "-n", node_namespace, "order", "-c", name, "--timestamps").stdout
            for name in ("elector", "app")}
    assert "first request: 200" in logs["app"], logs["app"]
    assert _first_line_time(logs["elector"]) < _first_line_time(logs["app"]), logs


def test_on_delete_the_app_stops_first_and_the_lease_is_released_before_the_elector_exits(
        node_cluster, node_api, node_namespace):
    # A finalizer keeps the pod object, with the kubelet's final status, after the containers stopped.
    pod = apps.bare_pod("stop", command=apps.SLEEP)
    pod["metadata"]["finalizers"] = ["kube-elector.test/keep"]
    node_api.post(f"/api/v1/namespaces/{node_namespace}/pods", json=pod).raise_for_status()
    pod = apps.wait_pod_ready(node_api, node_namespace, "stop")
    assert apps.wait_agreed_leader(node_api, node_namespace, count=1, selector="app=stop") == "stop"

    lease = apps.LeaseWatch(node_cluster.plane.client(), node_namespace, "stop")
    lease.start()
    lease.ready.wait(5)
    exits = pods.ExitWatch(pod, interval=0.001)
    exits.start()
    try:
        node_api.delete(f"/api/v1/namespaces/{node_namespace}/pods/stop").raise_for_status()
        exits.join(30)
        final = apps.wait_terminated(node_api, node_namespace, "stop")
    finally:
        node_api.patch(f"/api/v1/namespaces/{node_namespace}/pods/stop", json={"metadata": {"finalizers": None}},
                       headers={"Content-Type": "application/merge-patch+json"})

    released = lease.released_by("stop")
    assert set(exits.exited) == {"app", "elector"}, exits.exited
    assert released is not None, f"the Lease was never released: {lease.changes}"
    released -= exits.started
    print(f"after the delete: app exited +{exits.exited['app']:.3f} s, Lease released +{released:.3f} s, "
          f"elector exited +{exits.exited['elector']:.3f} s")
    assert exits.exited["app"] < released < exits.exited["elector"]
    statuses = {s["name"]: s["state"]["terminated"] for s in
                [*final["status"]["initContainerStatuses"], *final["status"]["containerStatuses"]]}
    assert statuses["elector"]["exitCode"] == 0, statuses  # a clean release, not a kill
    assert statuses["app"]["finishedAt"] <= statuses["elector"]["finishedAt"]
