"""controller.manager: informer events in, one worker reconciling while this replica leads (in-memory API)."""
from __future__ import annotations

import time

from controller import manager
from tests.unit.controller.fake_api import FakeApi
from tests.unit.controller.test_reconcile import BINDING, LEASE, ROLE, candidate


def wait(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def started(api: FakeApi, leading) -> manager.Manager:
    work = manager.Manager(api, identity="ctl-0", leading=leading)
    work._next_sweep = float("inf")  # no 0.1 sweep here (tests/unit/controller/test_rbac.py has it)
    for informer in work._informers:
        informer.synced.set()
    work._worker.start()
    return work


def feed(work: manager.Manager, api: FakeApi) -> None:
    """What the informers would see of the objects the worker wrote (no watch runs here)."""
    for informer, marker in ((work.roles, "/roles/"), (work.bindings, "/rolebindings/"), (work.leases, "/leases/")):
        for path, obj in list(api.objects.items()):
            key = (obj["metadata"].get("namespace", "shop"), obj["metadata"]["name"])
            if marker in path and informer.get(key) is None:
                informer._store[key] = obj
                informer._notify(None, obj)


def pod(name: str) -> dict:
    p = candidate(name)
    p["metadata"]["labels"]["elector.dev/election"] = "web"
    return p


def test_only_the_leading_replica_writes_and_it_catches_up_when_it_starts_leading():
    api, leading = FakeApi(), {"now": False}
    work = started(api, lambda: leading["now"])
    try:
        work._pod_changed(None, pod("web-aaa-1"))
        time.sleep(0.3)
        assert api.writes() == []  # a standby keeps its caches warm and writes nothing
        leading["now"] = True
        work.leadership_changed(True)
        assert wait(lambda: ROLE in api.objects and BINDING in api.objects and LEASE in api.objects)
        feed(work, api)
        work._pod_changed(pod("web-aaa-1"), None)  # the last pod is gone
        assert wait(lambda: ROLE not in api.objects and LEASE not in api.objects)
    finally:
        work.stop()


def test_a_new_holder_is_one_event_and_the_metrics_count_the_election():
    api = FakeApi()
    work = started(api, lambda: True)
    try:
        work._pod_changed(None, pod("web-aaa-1"))
        assert wait(lambda: LEASE in api.objects)
        lease = api.get(LEASE)
        work._lease_changed(None, lease)
        held = {**lease, "spec": {"holderIdentity": "web-aaa-1", "leaseDurationSeconds": 15, "leaseTransitions": 1}}
        work._lease_changed(lease, held)
        assert wait(lambda: any("/events/" in path for path in api.objects)), (api.calls, list(api.objects))
        assert wait(lambda: work.reconciles >= 2)  # the pod, then the Lease (its two events may be one)
        assert len([p for p in api.objects if "/events/" in p]) == 1
        assert "kube_elector_controller_elections 1" in work.metrics()
    finally:
        work.stop()
