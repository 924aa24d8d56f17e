"""What the kube-elector controller makes per election, and how it goes, through the real API server and
kube-controller-manager's garbage collector: Role `kube-elector-lease-<election>` owned by the election's
pods, its RoleBinding and the Lease owned by the Role. The controller keeps the Role's owners current and
removes all three with the last pod; with the controller stopped the garbage collector does it, never
before the last pod is gone. A rolling replacement of every pod keeps the Lease and one leader. The
electors themselves write no ownerReferences."""
from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from localplane.kube_elector.electors import Checker, leaders, wait_for
from localplane.kube_elector.election_objects import (LeaseWatch, delete_pod, get_binding, get_lease, get_role, owner_uids, owners)

pytestmark = pytest.mark.controlplane
ROLE = "kube-elector-lease-app"


def _stop(proc: Any) -> None:
    """As the kubelet stops a pod: SIGTERM to the elector (it releases), then the Pod object goes."""
    proc.signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0, proc.logs()


def _made(api: Any, namespace: str) -> tuple[Any, Any, Any]:
    return get_role(api, namespace), get_binding(api, namespace), get_lease(api, namespace)


def _assert_owned_by_role(api: Any, namespace: str, role: dict[str, Any]) -> None:
    """The RoleBinding and the Lease are owned by the Role alone (no controller, no blockOwnerDeletion)."""
    ref = ("Role", ROLE, role["metadata"]["uid"])
    for obj in (get_binding(api, namespace), get_lease(api, namespace)):
        assert owners(obj) == [ref], obj
        assert all("controller" not in r and "blockOwnerDeletion" not in r for r in obj["metadata"]["ownerReferences"])


def test_the_controller_keeps_the_roles_owners_and_removes_all_three_with_the_last_pod(
        controller: Any, pods: Any, electors: Any, api: Any, namespace: str, control_plane: Any) -> None:
    uids = pods("app-0", "app-1", "app-2")
    procs = {name: electors(name) for name in uids}
    assert wait_for(lambda: len(leaders(list(procs.values()))) == 1, 15)
    assert wait_for(lambda: owner_uids(get_role(api, namespace)) == set(uids.values()), 10), get_role(api, namespace)
    role, binding, lease = _made(api, namespace)
    assert all(r["kind"] == "Pod" and r["apiVersion"] == "v1" and "controller" not in r
               and "blockOwnerDeletion" not in r for r in role["metadata"]["ownerReferences"])
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "update", "watch"], "resourceNames": ["app"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "app", "namespace": namespace}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}
    for obj in (role, binding, lease):
        assert obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kube-elector",
                                             "elector.dev/election": "app"}
    _assert_owned_by_role(api, namespace, role)  # the electors' writes kept the Lease's owner as it was
    uid_of = {"role": role["metadata"]["uid"], "binding": binding["metadata"]["uid"], "lease": lease["metadata"]["uid"]}
    watch = LeaseWatch(control_plane.client(), namespace)
    watch.start()
    assert watch.ready.wait(5)

    # every pod but one goes, the leader first: the three stay, and the controller drops each owner
    order = sorted(procs, key=lambda name: not procs[name].is_leader())
    for name in order[:-1]:
        _stop(procs[name])
        delete_pod(api, namespace, name)
        assert wait_for(lambda: uids[name] not in owner_uids(get_role(api, namespace)), 10), get_role(api, namespace)
    survivor = order[-1]
    assert wait_for(lambda: procs[survivor].is_leader(), 10), procs[survivor].logs()
    time.sleep(3)  # the controller and the collector had every chance
    role, binding, lease = _made(api, namespace)
    assert {"role": role["metadata"]["uid"], "binding": binding["metadata"]["uid"],
            "lease": lease["metadata"]["uid"]} == uid_of
    assert owner_uids(role) == {uids[survivor]}

    # the last pod goes: so do the Role, the RoleBinding and the Lease
    _stop(procs[survivor])
    deleted = delete_pod(api, namespace, survivor)
    assert wait_for(lambda: watch.deleted_at() is not None, 15), watch.events[-3:]
    assert wait_for(lambda: _made(api, namespace) == (None, None, None), 10), _made(api, namespace)
    gone = time.monotonic() - deleted
    assert watch.uids() == {uid_of["lease"]}  # one Lease all along
    print(f"\nRole, RoleBinding and Lease gone {gone * 1000:.0f} ms after the last Pod's DELETE")
    # Whoever is first removes them: the controller's deletes or the garbage collector (the Role's owners
    # are gone); the test below shows the collector alone does it.


def test_with_the_controller_stopped_the_garbage_collector_removes_all_three_after_the_last_pod(
        controller: Any, pods: Any, electors: Any, api: Any, namespace: str, control_plane: Any) -> None:
    uids = pods("app-0", "app-1")
    procs = {name: electors(name) for name in uids}
    assert wait_for(lambda: len(leaders(list(procs.values()))) == 1, 15)
    assert wait_for(lambda: owner_uids(get_role(api, namespace)) == set(uids.values()), 10)
    role, binding, lease = _made(api, namespace)
    controller.stop()
    watch = LeaseWatch(control_plane.client(), namespace)
    watch.start()
    assert watch.ready.wait(5)

    # the leader's pod goes: the collector drops its reference from the Role, the election goes on
    first = next(name for name in procs if procs[name].is_leader())
    last = next(name for name in procs if name != first)
    _stop(procs[first])
    delete_pod(api, namespace, first)
    assert wait_for(lambda: owner_uids(get_role(api, namespace)) == {uids[last]}, 15), get_role(api, namespace)
    assert wait_for(lambda: procs[last].is_leader(), 10), procs[last].logs()
    time.sleep(3)  # the collector had every chance
    now = _made(api, namespace)
    assert [obj["metadata"]["uid"] for obj in now] == [obj["metadata"]["uid"] for obj in (role, binding, lease)]
    assert procs[last].is_leader()

    # the last pod goes: the collector deletes the Role, then what the Role owns
    _stop(procs[last])
    deleted = delete_pod(api, namespace, last)
    assert wait_for(lambda: _made(api, namespace) == (None, None, None), 20), _made(api, namespace)
    gone = time.monotonic() - deleted
    assert watch.deleted_at() is not None and watch.uids() == {lease["metadata"]["uid"]}
    print(f"\nwithout the controller: Role, RoleBinding and Lease gone {gone * 1000:.0f} ms after the last Pod's DELETE")
    assert not controller.process.running()


def test_a_rolling_replacement_keeps_the_lease_and_one_leader(controller: Any, pods: Any, electors: Any, api: Any,
                                                              namespace: str) -> None:
    uids = pods("old-0", "old-1")
    procs = {name: electors(name) for name in uids}
    assert wait_for(lambda: owner_uids(get_role(api, namespace)) == set(uids.values()), 15)
    assert wait_for(lambda: len(leaders(list(procs.values()))) == 1, 15)
    lease_uid = get_lease(api, namespace)["metadata"]["uid"]
    role_uid = get_role(api, namespace)["metadata"]["uid"]
    checker = Checker(list(procs.values()))
    checker.start()
    for old, new in (("old-0", "new-0"), ("old-1", "new-1")):  # maxSurge 1, maxUnavailable 0
        uids.update(pods(new))
        procs[new] = electors(new)
        checker.electors.append(procs[new])
        procs[new].wait_ready()
        assert wait_for(lambda: uids[new] in owner_uids(get_role(api, namespace)), 10)
        _stop(procs[old])
        checker.electors.remove(procs[old])
        delete_pod(api, namespace, old)
        assert wait_for(lambda: uids[old] not in owner_uids(get_role(api, namespace)), 10)
        assert get_lease(api, namespace)["metadata"]["uid"] == lease_uid
    live = [procs["new-0"], procs["new-1"]]
    assert wait_for(lambda: len(leaders(live)) == 1, 10)
    checker.stop()
    assert checker.overlaps == []
    role = get_role(api, namespace)
    assert role["metadata"]["uid"] == role_uid and owner_uids(role) == {uids["new-0"], uids["new-1"]}
    assert get_lease(api, namespace)["metadata"]["uid"] == lease_uid
    _assert_owned_by_role(api, namespace, role)


@pytest.mark.parametrize("kind", ["roles", "rolebindings"])
def test_a_role_or_binding_deleted_by_hand_is_made_again(kind: str, controller: Any, pods: Any, electors: Any,
                                                         api: Any, namespace: str) -> None:
    """Deleted by hand (or by a cleanup tool): the controller makes it again, and never creates a Lease owned
    by a Role that does not exist (the garbage collector would delete it at once, again and again)."""
    uids = pods("app-0", "app-1")
    procs = [electors(name) for name in ("app-0", "app-1")]
    assert wait_for(lambda: len(leaders(procs)) == 1, 10)
    assert wait_for(lambda: owner_uids(get_role(api, namespace)) == set(uids.values()), 10)
    time.sleep(1)  # the controller has nothing left to do (an update in flight would make the Role again by chance)
    assert api.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/{kind}/{ROLE}").status_code == 200

    def repaired() -> bool:
        role, binding, lease = _made(api, namespace)
        return (None not in (role, binding, lease) and owners(binding) == owners(lease)
                == [("Role", ROLE, role["metadata"]["uid"])])

    assert wait_for(repaired, 10), _made(api, namespace)
    assert wait_for(lambda: len(leaders(procs)) == 1, 10)
    assert controller.logs().count('"msg":"lease created"') <= 2, "Leases created again and again"
