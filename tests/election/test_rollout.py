"""Rollout awareness through the real API server: the pods' view (list + watch, RBAC), the release that
names a successor, pods being deleted never named. Revisions of real Deployments and
StatefulSets are on the node (tests/node/test_rollouts.py); here the pods are bare API objects whose
status the test sets, as no kubelet runs."""
from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from tests.election.electors import Checker, leaders, wait_for

pytestmark = pytest.mark.controlplane
LEASE = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/app"
WATCHING = "watching the candidates' pods"
FINALIZER = "elector.dev/test-hold"  # keeps a deleted pod around, deleting, like a kubelet's grace period


def make_pod(api: Any, namespace: str, name: str, *, ready: bool = True) -> None:
    made = api.post(f"/api/v1/namespaces/{namespace}/pods", json={
        "metadata": {"name": name, "labels": {"elector.dev/election": "app"}, "finalizers": [FINALIZER]},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}})
    assert made.status_code == 201, made.text
    status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}}
    patched = api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", content=json.dumps(status),
                        headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text


def lease(api: Any, namespace: str) -> dict[str, Any]:
    return api.get(LEASE.format(ns=namespace)).json()


def release_names(api: Any, namespace: str) -> str:
    return (lease(api, namespace)["metadata"].get("annotations") or {}).get("elector.dev/successor", "")


@pytest.fixture
def pods(api: Any, namespace: str):
    made: list[str] = []

    def make(name: str, **kw: Any) -> str:
        make_pod(api, namespace, name, **kw)
        made.append(name)
        return name

    yield make
    for name in made:  # let the namespace go
        api.patch(f"/api/v1/namespaces/{namespace}/pods/{name}", content=json.dumps({"metadata": {"finalizers": []}}),
                  headers={"Content-Type": "application/merge-patch+json"})


def test_a_release_names_a_ready_successor_which_takes_over_alone(electors, api, namespace, sa_kubeconfig, pods):
    kubeconfig = sa_kubeconfig(rollout=True)
    for name in ("app-a", "app-b", "app-c"):
        pods(name, ready=name != "app-b")  # app-b: not Ready, never the successor
    procs = [electors(name, kubeconfig=kubeconfig) for name in ("app-a", "app-b", "app-c")]
    for proc in procs:
        proc.wait_ready()
        assert wait_for(lambda: WATCHING in proc.logs(), 10), proc.logs()  # RBAC may take a moment
    first = wait_for(lambda: leaders(procs), 10)[0]
    checker = Checker(procs)
    checker.start()
    first.signal(signal.SIGTERM)
    assert first.proc.wait(10) == 0
    expected = "app-a" if first.pod != "app-a" else "app-c"  # the oldest Ready pod but the leader
    assert wait_for(lambda: [p.pod for p in leaders(procs)] == [expected], 5), [p.logs() for p in procs]
    checker.stop()
    assert checker.overlaps == []
    spec = lease(api, namespace)["spec"]
    assert spec["holderIdentity"] == expected and release_names(api, namespace) == ""  # the new term cleared it
    released = [line for line in map(json.loads, first.logs().splitlines()) if line["msg"] == "released the Lease"]
    assert released and released[-1]["successor"] == expected


def test_pods_being_deleted_are_never_named_and_a_deleting_leader_leads_until_its_signal(
        electors, api, namespace, sa_kubeconfig, pods):
    kubeconfig = sa_kubeconfig(rollout=True)
    for name in ("app-a", "app-b", "app-c"):
        pods(name)
    procs = [electors(name, kubeconfig=kubeconfig) for name in ("app-a", "app-b", "app-c")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    assert wait_for(lambda: all(WATCHING in p.logs() for p in procs), 10), [p.logs() for p in procs]
    others = [p for p in procs if p is not first]
    for pod in (first.pod, others[0].pod):  # held by the finalizer: deleting, as under a kubelet's grace period
        assert api.delete(f"/api/v1/namespaces/{namespace}/pods/{pod}").status_code == 200
    time.sleep(1.5)  # half a lease duration: its app would still be stopping
    assert leaders(procs) == [first]
    first.signal(signal.SIGTERM)  # the sidecar's signal, after the app has exited
    assert first.proc.wait(10) == 0
    assert wait_for(lambda: leaders(procs) == [others[1]], 5), [p.logs() for p in procs]
    assert release_names(api, namespace) == ""
    released = [line for line in map(json.loads, first.logs().splitlines()) if line["msg"] == "released the Lease"]
    assert released and released[-1]["successor"] == others[1].pod


def test_without_the_pods_role_the_election_runs_as_before(electors, api, namespace, pods):
    pods("app-a")
    proc = electors("app-a")  # bound to kube-elector-election only
    assert wait_for(lambda: leaders([proc]), 10)
    assert wait_for(lambda: "cannot list pods: running without rollout awareness" in proc.logs(), 5), proc.logs()
