"""Operating elections through the real API server: Events on the Lease (recorded by the kube-elector
controller), the status view (as `kube-elector-status`, with and without the plugin's `status` word, and `kubectl elector
status`, with a read-only user), the sidecar's metrics read by Prometheus's parser, and KUBECONFIG."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localplane.kube_elector.electors import leaders, wait_for
from localplane.kube_elector.election_objects import get_lease, metric

pytestmark = pytest.mark.controlplane

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent  # kube-elector-status, kubectl-elector


def lease_events(api: Any, namespace: str) -> list[dict[str, Any]]:
    items = api.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events").json()["items"]
    return sorted((e for e in items if e["reason"] == "LeaderElection"), key=lambda e: e["eventTime"])


def test_each_change_of_leader_is_an_event_on_the_lease(controller: Any, pods: Any, electors: Any, api: Any,
                                                        namespace: str, control_plane: Any) -> None:
    pods("app-0", "app-1", ready=False)  # not Ready: the release names nobody, app-1 takes a free Lease
    first = electors("app-0")
    assert wait_for(first.is_leader, 10), first.logs()
    second = electors("app-1")
    second.wait_ready()
    assert wait_for(lambda: len(lease_events(api, namespace)) == 1, 10), controller.logs()[-3000:]
    first.signal(signal.SIGTERM)
    assert first.proc.wait(10) == 0
    assert wait_for(second.is_leader, 10)
    assert wait_for(lambda: len(lease_events(api, namespace)) == 2, 10), lease_events(api, namespace)
    lease_uid = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/app").json()["metadata"]["uid"]
    acquired, released = lease_events(api, namespace)
    for event in (acquired, released):
        assert event["type"] == "Normal" and event["reportingController"] == "kube-elector"
        assert event["reportingInstance"] == "ctl-0"  # the controller replica that saw it
        assert event["regarding"] == {"kind": "Lease", "namespace": namespace, "name": "app", "uid": lease_uid,
                                      "apiVersion": "coordination.k8s.io/v1"}
    # the controller created the Lease free: its first holder acquires it, as term 1
    assert (acquired["action"], acquired["note"]) == ("Acquire", "app-0 became leader (term 1): the Lease was free")
    assert (released["action"], released["note"]) == ("Acquire", "app-1 became leader (term 2): app-0 released the Lease")
    assert metric(second, "rest_client_requests_total", method="POST") == 0  # no Lease, no Event: not its rights

    described = control_plane.kubectl("describe", "lease", "app", "-n", namespace).stdout
    assert "app-1 became leader (term 2): app-0 released the Lease" in described, described
    listed = control_plane.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=LeaderElection").stdout
    print(f"\n$ kubectl describe lease app\n{described[described.index('Events:'):]}\n$ kubectl get events\n{listed}")
    assert listed.count("LeaderElection") == 2 and "lease/app" in listed


def test_identical_repeats_are_one_event_with_a_series(controller: Any, pods: Any, electors: Any, api: Any,
                                                       namespace: str) -> None:
    pods("solo")
    proc = electors("solo")
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/app"
    uids: list[str] = []

    def held_anew() -> bool:
        """A Lease not seen before is held by "solo", who says it leads."""
        got = get_lease(api, namespace)
        if (got is None or got["spec"].get("holderIdentity") != "solo" or got["metadata"]["uid"] in uids
                or not proc.is_leader()):
            return False
        uids.append(got["metadata"]["uid"])
        return True

    for _ in range(2):  # deleted by hand: the controller creates it again, free; "solo" takes it as term 1 again
        assert wait_for(held_anew, 10), proc.logs()
        assert api.delete(lease).status_code == 200
    assert wait_for(held_anew, 10), proc.logs()
    assert len(uids) == 3  # three Leases, three identical first terms
    assert wait_for(lambda: (lease_events(api, namespace) or [{}])[0].get("series", {}).get("count") == 3, 10), \
        lease_events(api, namespace)
    (event,) = lease_events(api, namespace)  # one object: one create, then two patches of its series
    assert event["note"] == "solo became leader (term 1): the Lease was free"


@pytest.fixture
def viewer(control_plane: Any, api: Any, namespace: str) -> Path:
    """A kubeconfig of a person bound (in this namespace only) to the read-only kube-elector-status role."""
    control_plane.kubectl("apply", "-f", str(ROOT / "manifests" / "rbac-status.yaml"))
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "status-viewer", "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-elector-status"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "viewer"}]}
    made = api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding)
    assert made.status_code == 201, made.text
    return control_plane.client_kubeconfig("viewer", user="viewer", groups=[])


def run(*argv: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
                          capture_output=True, text=True, timeout=timeout)


def test_status_view_with_a_read_only_user(controller: Any, pods: Any, electors: Any, api: Any, namespace: str,
                                           viewer: Path, control_plane: Any) -> None:
    uids = pods("app-0", "app-1", ready=False)
    procs = [electors(name) for name in uids]
    assert wait_for(lambda: len(leaders(procs)) == 1, 10)
    leader = leaders(procs)[0].pod
    assert wait_for(lambda: len(lease_events(api, namespace)) == 1, 10), controller.logs()[-3000:]
    controller.stop()  # a new election now waits for its Lease: a candidate whose elector never ran
    pods("lonely-0", election="lonely", ready=False)
    env = {"KUBECONFIG": str(viewer)}

    table = run("kube-elector-status", "-n", namespace, env=env)
    assert table.returncode == 0, table.stderr
    print(f"\n$ kube-elector-status -n {namespace}\n{table.stdout}")
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ELECTION", "LEADER", "TERM"] and len(rows) == 2
    app, lonely = rows
    assert app.split()[:2] == ["app", leader] and "0/2" in app  # unscheduled pods are not Ready
    assert app.endswith("! leader pod not Ready")
    assert lonely.split()[:3] == ["lonely", "<none>", "-"] and lonely.endswith("! candidates but no Lease")

    as_json = json.loads(run("kube-elector-status", "status", "app", "-n", namespace, "-o", "json", env=env).stdout)
    (item,) = as_json["items"]
    assert (item["election"], item["leader"], item["term"], item["transitions"]) == ("app", leader, 1, 1)
    assert item["candidates"]["total"] == 2 and item["warnings"] == ["leader pod not Ready"]

    plugin = run(str(control_plane.binaries.kubectl), "elector", "status", "-n", namespace, "-o", "wide", env=env)
    assert plugin.returncode == 0, plugin.stderr
    assert "RENEWED" in plugin.stdout and "app-0(not ready),app-1(not ready)" in plugin.stdout

    denied = run("kube-elector-status", "-A", env=env)  # a RoleBinding grants one namespace, not -A
    assert denied.returncode == 1 and "HTTP 403" in denied.stderr and "Traceback" not in denied.stderr

    # --watch prints an election again when it changed
    watcher = subprocess.Popen(["kube-elector-status", "-n", namespace, "-w", "--interval=300ms"],
                               env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
                               stdout=subprocess.PIPE, text=True)
    try:
        next(p for p in procs if p.pod == leader).signal(signal.SIGTERM)
        other = next(p for p in procs if p.pod != leader)
        assert wait_for(other.is_leader, 10)
        lines = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(line.startswith(f"app   {other.pod}") or
                                                      line.split()[:2] == ["app", other.pod] for line in lines):
            lines.append(watcher.stdout.readline().rstrip())
        assert any(line.split()[:3] == ["app", other.pod, "2"] for line in lines), lines
    finally:
        watcher.terminate()
        watcher.wait(5)


def test_metrics_of_a_real_elector(electors: Any) -> None:
    proc = electors("app-0")
    assert wait_for(proc.is_leader, 10)
    time.sleep(1.2)  # a few renewals
    assert metric(proc, "rest_client_requests_total", method="PUT", code="200") >= 2
    assert metric(proc, "rest_client_requests_total", method="POST") == 0  # it creates nothing: no Lease, no Event
    assert metric(proc, "rest_client_requests_total", method="WATCH", code="200") >= 1
    assert metric(proc, "rest_client_request_duration_seconds_count", verb="PUT") >= 2
    assert 5e6 < metric(proc, "process_resident_memory_bytes") < 100e6
    assert metric(proc, "process_cpu_seconds_total") > 0 and metric(proc, "process_open_fds") > 3
    assert abs(metric(proc, "process_start_time_seconds") - time.time()) < 60
    assert metric(proc, "python_gc_collections_total") > 0


def test_kubeconfig_env_is_honoured(electors: Any, sa_kubeconfig: Any) -> None:
    proc = electors("app-0", kubeconfig=None, env={"KUBECONFIG": f"/nonexistent:{sa_kubeconfig()}"})
    assert wait_for(proc.is_leader, 10), proc.logs()
