"""A real client-go candidate on the same Lease: kube-controller-manager's own leader election
(`--leader-elect`, client-go `tools/leaderelection`), with the same short timings as the electors:
3 s / 2 s / 400 ms, the defaults (15 s / 10 s / 2 s) scaled by 1/5, so that the electors' derived renew
interval (two fifths of the lease: 1.2 s) stands to client-go's lease count as the default 6 s does to 15 s.
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from localplane.kube_elector.electors import LEASE, Checker, leaders, wait_for

pytestmark = pytest.mark.controlplane
ELECTION = "shared-with-go"
RETRY = "400ms"  # the electors' too (the defaults' ratios): their renew interval is then 1.2 s


class GoCandidate:
    """kube-controller-manager competing for `<namespace>/shared-with-go` (3 s / 2 s / 400 ms)."""

    def __init__(self, control_plane: Any, namespace: str, log: Path) -> None:
        self.argv = [
            str(control_plane.binaries.kube_controller_manager), f"--kubeconfig={control_plane.kubeconfig}",
            "--leader-elect=true", "--leader-elect-resource-lock=leases",
            f"--leader-elect-resource-namespace={namespace}", f"--leader-elect-resource-name={ELECTION}",
            "--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s",
            f"--leader-elect-retry-period={RETRY}", "--controllers=ttl-controller", "--secure-port=0",
        ]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)

    def acquisitions(self) -> int:
        return self.log.read_text(errors="replace").count("Successfully acquired lease")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def go_candidate(control_plane: Any, namespace: str, tmp_path: Path) -> Iterator[GoCandidate]:
    candidate = GoCandidate(control_plane, namespace, tmp_path / "kcm.log")
    yield candidate
    candidate.kill()


def test_electors_and_a_client_go_candidate_share_one_lease(
        electors: Any, go_candidate: GoCandidate, api: Any, namespace: str) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{ELECTION}"

    def spec() -> dict[str, Any]:
        response = api.get(path)
        return response.json()["spec"] if response.status_code == 200 else {}

    # 1. client-go holds the Lease: the electors respect it and name it as leader.
    go_candidate.start()
    assert wait_for(lambda: "_" in spec().get("holderIdentity", ""), 20), go_candidate.log.read_text()[-2000:]
    go_holder = spec()["holderIdentity"]
    procs = [electors(f"app-{n}", election=ELECTION, extra=[f"--retry-period={RETRY}"]) for n in "ab"]
    checker = Checker(procs)
    checker.start()
    time.sleep(2 * LEASE)
    assert leaders(procs) == []
    assert all(p.status()["name"] == go_holder for p in procs)

    # 2. client-go crashes: an elector takes over once the Lease expires, as the next term.
    transitions = spec()["leaseTransitions"]
    killed = time.monotonic()
    go_candidate.kill()
    took = wait_for(lambda: leaders(procs) and time.monotonic() - killed, LEASE + 2)
    assert took, "no elector took over from the crashed client-go leader"
    print(f"client-go crash -> elector: {took:.2f}s")
    leader = leaders(procs)[0]
    assert spec()["holderIdentity"] == leader.pod and spec()["leaseTransitions"] == transitions + 1

    # 3. client-go comes back: it must respect the elector's Lease, renewed every 1.2 s (not every retry
    #    period, as client-go renews): it never sees the Lease unchanged for a lease duration.
    go_candidate.start()
    renewals = set()
    until = time.monotonic() + 2 * LEASE
    while time.monotonic() < until:
        renewals.add(spec().get("renewTime"))
        time.sleep(0.1)
    assert go_candidate.acquisitions() == 1 and spec()["holderIdentity"] == leader.pod
    assert 3 <= len(renewals) <= 7, f"{len(renewals)} renewals in {2 * LEASE:g} s, expected one per 1.2 s"
    print(f"elector leading beside a client-go follower: {len(renewals)} Lease renewals seen in {2 * LEASE:g} s")

    # 4. the elector releases on SIGTERM: client-go takes it at its next retry, not after a lease duration.
    for proc in procs:
        if proc is not leader:
            proc.stop()
    released = time.monotonic()
    leader.signal(signal.SIGTERM)
    took = wait_for(lambda: go_candidate.acquisitions() == 2 and time.monotonic() - released, LEASE, interval=0.05)
    assert took, "client-go did not take the released Lease before it would have expired"
    print(f"elector release -> client-go: {took:.2f}s")
    assert leader.proc.wait(10) == 0
    assert "_" in spec()["holderIdentity"] and spec()["leaseTransitions"] == transitions + 2
    checker.stop()
    assert checker.overlaps == []
