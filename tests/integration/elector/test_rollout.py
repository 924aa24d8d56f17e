"""Rollout succession through the real API server: the kube-elector controller watches the candidates'
pods and publishes on the Lease whom a release names (`elector.dev/next-leader`) and, while a Ready pod of
a newer revision of the holder's workload exists, whom to hand over to now (`elector.dev/hand-over-to`);
the electors, which hold no pod rights, follow. Revisions of real Deployments and StatefulSets are on
the node (tests/node/test_rollouts.py); here the pods are bare API objects whose status the test sets,
as no kubelet runs."""
from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from localplane.kube_elector.electors import LEASE as LEASE_SECONDS
from localplane.kube_elector.electors import Checker, leaders, wait_for
from localplane.kube_elector.election_objects import annotations, get_lease, set_ready

pytestmark = pytest.mark.controlplane
NEXT_LEADER = "elector.dev/next-leader"
HAND_OVER_TO = "elector.dev/hand-over-to"
SUCCESSOR = "elector.dev/successor"


def hint(api: Any, namespace: str, key: str) -> str:
    return annotations(get_lease(api, namespace)).get(key, "")


def released(proc: Any) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, proc.logs().splitlines()) if line["msg"] == "released the Lease"]


def test_a_release_names_the_controllers_next_leader_which_takes_over_alone(controller, pods, electors, api,
                                                                             namespace):
    pods("app-a", "app-c")
    pods("app-b", ready=False)  # not Ready: never the successor
    procs = [electors(name) for name in ("app-a", "app-b", "app-c")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    expected = "app-a" if first.pod != "app-a" else "app-c"  # the oldest Ready pod but the leader
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) == expected, 5), controller.logs()[-3000:]
    assert hint(api, namespace, HAND_OVER_TO) == ""  # bare pods: no revisions, no rollout
    checker = Checker(procs)
    checker.start()
    first.signal(signal.SIGTERM)
    assert first.proc.wait(10) == 0
    assert wait_for(lambda: [p.pod for p in leaders(procs)] == [expected], 5), (
        released(first), [p.logs()[-4000:] for p in procs], controller.logs()[-3000:])
    checker.stop()
    assert checker.overlaps == []
    lease = get_lease(api, namespace)
    assert lease["spec"]["holderIdentity"] == expected and annotations(lease).get(SUCCESSOR, "") == ""  # cleared
    assert released(first) and released(first)[-1]["successor"] == expected
    # the controller names the next one for the new holder: the other Ready pod (the released leader's pod
    # may be it: it is still there), never the holder itself, never app-b
    (after,) = {"app-a", "app-c"} - {expected}
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) == after, 5), get_lease(api, namespace)


def test_pods_being_deleted_are_never_named_and_a_deleting_leader_leads_until_its_signal(
        controller, pods, electors, api, namespace):
    pods("app-a", "app-b", "app-c", hold=True)  # a finalizer keeps a deleted pod, deleting, like a grace period
    procs = [electors(name) for name in ("app-a", "app-b", "app-c")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    others = [p for p in procs if p is not first]
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) == others[0].pod, 5), controller.logs()[-3000:]
    for pod in (first.pod, others[0].pod):  # deleting: its Ready replica is going away too
        assert api.delete(f"/api/v1/namespaces/{namespace}/pods/{pod}").status_code == 200
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) == others[1].pod, 5), controller.logs()[-3000:]
    time.sleep(1.5)  # half a lease duration: its app would still be stopping
    assert leaders(procs) == [first]
    assert hint(api, namespace, NEXT_LEADER) == others[1].pod
    first.signal(signal.SIGTERM)  # the sidecar's signal, after the app has exited
    assert first.proc.wait(10) == 0
    assert wait_for(lambda: leaders(procs) == [others[1]], 5), [p.logs() for p in procs]
    assert annotations(get_lease(api, namespace)).get(SUCCESSOR, "") == ""
    assert released(first) and released(first)[-1]["successor"] == others[1].pod
    # the new leader's next is nobody: the other two pods are being deleted
    assert wait_for(lambda: NEXT_LEADER not in annotations(get_lease(api, namespace)), 5), get_lease(api, namespace)


def daemon_set(api: Any, namespace: str, name: str) -> dict[str, Any]:
    """A DaemonSet as the pods' controller: a real owner for the garbage collector, and inert (no
    daemonset-controller runs in this control plane, and there are no nodes)."""
    labels = {"app": name}
    made = api.post(f"/apis/apps/v1/namespaces/{namespace}/daemonsets", json={
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}}})
    assert made.status_code == 201, made.text
    return made.json()


def test_a_rollout_moves_leadership_once_to_a_ready_pod_of_the_new_revision(controller, pods, electors, api,
                                                                              namespace):
    owner = daemon_set(api, namespace, "web")
    ref = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "uid": owner["metadata"]["uid"]}
    pods("web-old-a", "web-old-b", labels={"app": "web", "controller-revision-hash": "r1"}, owner=ref)
    procs = [electors(name) for name in ("web-old-a", "web-old-b")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) not in ("", first.pod), 5), controller.logs()[-3000:]
    term = get_lease(api, namespace)["spec"]["leaseTransitions"]
    checker = Checker(list(procs))
    checker.start()
    time.sleep(1.1)  # a revision's birth is its oldest pod's creationTimestamp: seconds
    pods("web-new-a", labels={"app": "web", "controller-revision-hash": "r2"}, owner=ref, ready=False)
    new = electors("web-new-a")
    checker.electors.append(new)
    new.wait_ready()
    time.sleep(1.0)
    assert hint(api, namespace, HAND_OVER_TO) == "" and leaders(procs + [new]) == [first]  # not Ready: no handover
    set_ready(api, namespace, "web-new-a")  # Ready: the controller asks the old leader to hand over, at once
    assert wait_for(lambda: leaders(procs + [new]) == [new], 5), [p.logs() for p in procs + [new]]
    lease = get_lease(api, namespace)
    assert lease["spec"]["holderIdentity"] == "web-new-a" and lease["spec"]["leaseTransitions"] == term + 1
    assert released(first) and released(first)[-1]["successor"] == "web-new-a"
    handing = [line for line in map(json.loads, first.logs().splitlines()) if line["msg"] == "handing over"]
    assert handing and handing[-1]["successor"] == "web-new-a", first.logs()
    assert wait_for(lambda: HAND_OVER_TO not in annotations(get_lease(api, namespace)), 5)  # the newest leads
    # the old pods go (SIGTERM, then the Pod): leadership does not move again
    for proc in procs:
        proc.signal(signal.SIGTERM)
        assert proc.proc.wait(10) == 0
        checker.electors.remove(proc)
        assert api.delete(f"/api/v1/namespaces/{namespace}/pods/{proc.pod}").status_code == 200
    time.sleep(LEASE_SECONDS)
    checker.stop()
    assert checker.overlaps == []
    assert leaders([new]) == [new]
    assert get_lease(api, namespace)["spec"]["leaseTransitions"] == term + 1  # exactly one change of leader


def test_without_the_controller_the_election_runs_as_before(controller, pods, electors, api, namespace):
    """The controller stops: the running election keeps electing, failing over and never overlaps (its
    Lease and Role exist); the hints it left may be stale, which costs at most a lease duration."""
    pods("app-a", "app-b", "app-c")
    procs = [electors(name) for name in ("app-a", "app-b", "app-c")]
    first = wait_for(lambda: leaders(procs), 10)[0]
    assert wait_for(lambda: hint(api, namespace, NEXT_LEADER) not in ("", first.pod), 5)
    controller.stop()
    checker = Checker(procs)
    checker.start()
    renewed = get_lease(api, namespace)["spec"]["renewTime"]
    time.sleep(2 * LEASE_SECONDS)  # renewals go on
    lease = get_lease(api, namespace)
    assert leaders(procs) == [first] and lease["spec"]["renewTime"] != renewed
    first.signal(signal.SIGKILL)  # fails over, after the Lease expired
    rest = [p for p in procs if p is not first]
    second = wait_for(lambda: leaders(rest), LEASE_SECONDS + 3)
    assert second, [p.logs() for p in rest]
    second[0].signal(signal.SIGTERM)  # hands over (to a stale nominee at worst: waits a lease duration)
    assert second[0].proc.wait(10) == 0
    last = [p for p in rest if p is not second[0]]
    assert wait_for(lambda: leaders(last), LEASE_SECONDS + 3), [p.logs() for p in last]
    checker.stop()
    assert checker.overlaps == []
    assert not controller.process.running()
