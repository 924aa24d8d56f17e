"""A new election while the kube-elector controller is down: its electors may not create the Lease (their
account has no rights until the controller makes the election's Role), so they wait, alive and quiet
(the waiting line once), and elect within seconds of the controller's return (docs/security.md,
"Controller absent")."""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from localplane.kube_elector.electors import Checker, leaders, wait_for
from localplane.kube_elector.election_objects import get_binding, get_lease, get_role

pytestmark = pytest.mark.controlplane
WAITING = "waiting for the kube-elector controller to create the Lease and its Role"


def probe(proc: Any, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proc.probe_port}{path}", timeout=1) as reply:  # noqa: S310
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_new_election_waits_for_the_controller_and_elects_within_seconds_of_its_return(
        controller: Any, pods: Any, electors: Any, api: Any, namespace: str) -> None:
    controller.stop()
    pods("new-0", "new-1")
    procs = [electors(name) for name in ("new-0", "new-1")]
    checker = Checker(procs)
    checker.start()
    time.sleep(4)  # eight retry periods
    for proc in procs:
        assert proc.proc.poll() is None, proc.logs()  # no exit, no crash loop
        assert proc.logs().count(WAITING) == 1, proc.logs()
        assert '"level":"error"' not in proc.logs() and "Traceback" not in proc.logs(), proc.logs()
        assert probe(proc, "/healthz") == 200  # the kubelet's startup and liveness probes keep it
        body = proc.status()
        assert body is not None and body["is_leader"] is False and not body.get("name"), body
    assert (get_role(api, namespace), get_binding(api, namespace), get_lease(api, namespace)) == (None, None, None)

    started = time.monotonic()
    controller.start()
    took = wait_for(lambda: len(leaders(procs)) == 1 and time.monotonic() - started, 30)
    print(f"\ncontroller started -> leader elected: {took:.2f} s")  # a figure, not asserted (noisy machines)
    assert took, [p.logs() for p in procs] + [controller.logs()[-3000:]]
    time.sleep(1)
    checker.stop()
    assert checker.overlaps == []
    assert all(proc.logs().count(WAITING) == 1 for proc in procs)  # said once, not per attempt
