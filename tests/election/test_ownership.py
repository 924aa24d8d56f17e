"""Lease lifetime through the real API server and kube-controller-manager's garbage collector: every
candidate's Pod owns the Lease; the Lease goes with the last Pod, never before, and survives a
rolling replacement of every Pod. Electors run with the shipped RBAC (no `pods` permission)."""
from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.election.electors import Checker, leaders, wait_for
from tests.election.operations import (LeaseWatch, delete_pod, get_lease, make_pods, metric, owner_uids)

pytestmark = pytest.mark.controlplane


def _stop(proc: Any) -> None:
    """As the kubelet stops a pod: SIGTERM to the elector (it releases), then the Pod object goes."""
    proc.signal(signal.SIGTERM)
    assert proc.proc.wait(10) == 0, proc.logs()


def test_the_lease_goes_with_the_last_pod_and_never_before(electors: Any, api: Any, namespace: str,
                                                            control_plane: Any) -> None:
    uids = make_pods(api, namespace, ["app-0", "app-1", "app-2"])
    procs = {name: electors(name, env={"POD_UID": uid}) for name, uid in uids.items()}
    assert wait_for(lambda: len(leaders(list(procs.values()))) == 1, 15)
    assert wait_for(lambda: owner_uids(get_lease(api, namespace)) == set(uids.values()), 10), get_lease(api, namespace)
    lease = get_lease(api, namespace)
    assert lease["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kube-elector"
    refs = lease["metadata"]["ownerReferences"]
    assert all(r["kind"] == "Pod" and r["apiVersion"] == "v1" and "controller" not in r
               and "blockOwnerDeletion" not in r for r in refs)
    lease_uid = lease["metadata"]["uid"]
    watch = LeaseWatch(control_plane.client(), namespace)
    watch.start()
    assert watch.ready.wait(5)

    # every pod but one goes, the leader first: the Lease stays, and the garbage collector prunes each reference
    order = sorted(procs, key=lambda name: not procs[name].is_leader())
    pruned = []
    for name in order[:-1]:
        _stop(procs[name])
        deleted = delete_pod(api, namespace, name)
        assert wait_for(lambda: uids[name] not in owner_uids(get_lease(api, namespace)), 10), get_lease(api, namespace)
        pruned.append(time.monotonic() - deleted)
    survivor = order[-1]
    assert wait_for(lambda: procs[survivor].is_leader(), 10), procs[survivor].logs()
    time.sleep(3)  # the collector had every chance
    lease = get_lease(api, namespace)
    assert lease is not None and lease["metadata"]["uid"] == lease_uid
    assert owner_uids(lease) == {uids[survivor]}

    # the last pod goes: so does the Lease
    _stop(procs[survivor])
    deleted = delete_pod(api, namespace, survivor)
    assert wait_for(lambda: watch.deleted_at() is not None, 15), watch.events[-3:]
    gone = watch.deleted_at() - deleted
    assert get_lease(api, namespace) is None and watch.uids() == {lease_uid}
    print(f"\nreference pruned {', '.join(f'{s * 1000:.0f}' for s in pruned)} ms after its Pod's DELETE; "
          f"Lease deleted {gone * 1000:.0f} ms after the last Pod's DELETE")
    assert gone < 10


def test_a_rolling_replacement_keeps_the_lease_and_one_leader(electors: Any, api: Any, namespace: str) -> None:
    uids = make_pods(api, namespace, ["old-0", "old-1"])
    procs = {name: electors(name, env={"POD_UID": uid}) for name, uid in uids.items()}
    assert wait_for(lambda: owner_uids(get_lease(api, namespace)) == set(uids.values()), 15)
    lease_uid = get_lease(api, namespace)["metadata"]["uid"]
    checker = Checker(list(procs.values()))
    checker.start()
    for old, new in (("old-0", "new-0"), ("old-1", "new-1")):  # maxSurge 1, maxUnavailable 0
        uids.update(make_pods(api, namespace, [new]))
        procs[new] = electors(new, env={"POD_UID": uids[new]})
        checker.electors.append(procs[new])
        procs[new].wait_ready()
        assert wait_for(lambda: uids[new] in owner_uids(get_lease(api, namespace)), 10)
        _stop(procs[old])
        checker.electors.remove(procs[old])
        delete_pod(api, namespace, old)
        assert wait_for(lambda: uids[old] not in owner_uids(get_lease(api, namespace)), 10)
        assert get_lease(api, namespace)["metadata"]["uid"] == lease_uid
    live = [procs["new-0"], procs["new-1"]]
    assert wait_for(lambda: len(leaders(live)) == 1, 10)
    checker.stop()
    assert checker.overlaps == []
    lease = get_lease(api, namespace)
    assert lease["metadata"]["uid"] == lease_uid and owner_uids(lease) == {uids["new-0"], uids["new-1"]}


def test_ownership_costs_one_put_per_join_and_nothing_per_leave(electors: Any, api: Any, namespace: str) -> None:
    """At the default timings (a renewal every 2 s) and one join at a time; concurrent writes can cost a
    409 and a re-read now and then: bench/elector_ownership.py measures how often."""
    # the Lease's calls only: rollout awareness adds a pods list (a GET) and watch, counted in the same metric
    defaults = ["--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s", "--rollout-aware=false"]
    uids = make_pods(api, namespace, ["a", "b", "c"])
    first = electors("a", env={"POD_UID": uids["a"]}, extra=defaults)
    assert wait_for(lambda: first.is_leader(), 10)
    joined = []
    for name in ("b", "c"):
        joined.append(electors(name, env={"POD_UID": uids[name]}, extra=defaults))
        assert wait_for(lambda: uids[name] in owner_uids(get_lease(api, namespace)), 10)
    for proc in joined:  # a follower: its first GET, one PUT (joining the owners), and its watch
        assert metric(proc, "rest_client_requests_total", method="PUT") == 1, proc.logs()
        assert metric(proc, "rest_client_requests_total", method="GET") == 1
    _stop(joined[0])
    delete_pod(api, namespace, "b")
    assert wait_for(lambda: uids["b"] not in owner_uids(get_lease(api, namespace)), 10)
    time.sleep(4.5)  # two renewals after the collector's write
    # the joins and the collector's pruning changed only metadata: the leader's renewals never hit a 409
    assert metric(first, "rest_client_requests_total", code="409") == 0, first.logs()
    assert metric(first, "leader_election_slowpath_total") == 0
    assert metric(first, "rest_client_requests_total", method="GET") == 1  # its first read only


def test_without_a_pod_uid_nothing_owns_the_lease(electors: Any, api: Any, namespace: str) -> None:
    make_pods(api, namespace, ["solo"])
    proc = electors("solo")  # POD_UID=uid-solo: not a Pod's uid, so no reference (and a warning)
    assert wait_for(lambda: proc.is_leader(), 10)
    assert owner_uids(get_lease(api, namespace)) == set()
    assert "POD_UID is not a Pod's uid" in proc.logs()
