"""Two live candidates with one pod name (a StatefulSet pod force-deleted while its node is cut off, and
its replacement already running) never both lead: the holder writes its Pod's uid beside holderIdentity
(annotation elector.dev/holder-uid), and an elector never takes a Lease held by its name with another uid
for its own."""
from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from localplane.kube_elector.electors import LEASE, Checker, leaders, wait_for
from localplane.kube_elector.election_objects import annotations, delete_pod, get_lease

pytestmark = pytest.mark.controlplane
HOLDER_UID = "elector.dev/holder-uid"


def test_same_pod_name_different_uid_never_both_lead(controller: Any, pods: Any, electors: Any, api: Any,
                                                     namespace: str) -> None:
    uids = pods("db-0", "db-1")
    old = electors("db-0", log_name="db-0-old")
    assert wait_for(old.is_leader, 10), old.logs()
    other = electors("db-1")
    other.wait_ready()
    lease = get_lease(api, namespace)
    assert lease["spec"]["holderIdentity"] == "db-0" and annotations(lease)[HOLDER_UID] == uids["db-0"]
    term = lease["spec"]["leaseTransitions"]

    # db-0 is force-deleted and created again (a new uid); the old process still runs and renews
    delete_pod(api, namespace, "db-0", force=True)
    new_uid = pods("db-0")["db-0"]
    assert new_uid != uids["db-0"]
    new = electors("db-0", log_name="db-0-new", env={"POD_UID": new_uid})
    procs = [old, other, new]
    checker = Checker(procs)
    checker.start()
    new.wait_ready()
    renewed = lease["spec"]["renewTime"]
    time.sleep(3 * LEASE)  # three lease durations of renewals by the old process
    lease = get_lease(api, namespace)
    assert leaders(procs) == [old], [p.logs() for p in procs]
    assert new.status()["is_leader"] is False
    assert lease["spec"]["holderIdentity"] == "db-0" and annotations(lease)[HOLDER_UID] == uids["db-0"]
    assert lease["spec"]["leaseTransitions"] == term and lease["spec"]["renewTime"] != renewed

    # the old process dies: after the Lease expired, one of the others takes over, as a new term
    killed = time.monotonic()
    old.signal(signal.SIGKILL)
    old.proc.wait(5)
    took = wait_for(lambda: leaders([other, new]) and time.monotonic() - killed, LEASE + 3)
    assert took and took >= LEASE - 1.0, took  # not before the old claim could expire
    checker.stop()
    assert checker.overlaps == [], checker.overlaps
    (leader,) = leaders([other, new])
    lease = get_lease(api, namespace)
    assert lease["spec"]["leaseTransitions"] == term + 1
    assert annotations(lease)[HOLDER_UID] == (new_uid if leader is new else uids["db-1"])
