"""A forged Lease record, written through the real API server with the app's own token.

Any container holding the election's ServiceAccount token may update its Lease (docs/security.md, "What an
attack gets"). client-go's candidates honour whatever `leaseDurationSeconds` the record claims, so a
holder that is no candidate, claiming a year, renewed now, would freeze the election for that year. Ours
count a claim as at most LEASE_CAP_FACTOR x their own lease duration (elector/election/seen.py): here three
elector processes, started as the injected container starts them, must see one of them lead once the cap
has run out, not before and not after hours, and never two at once (a checker polls all three every 50 ms).
"""
from __future__ import annotations

import contextlib
import datetime
import ssl
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from elector.election.seen import LEASE_CAP_FACTOR
from localplane.kube_elector import election_objects as operations
from localplane.kube_elector.electors import Checker, Elector, leaders, wait_for

ELECTION = "app"
LEASE, RENEW, RETRY = 2.0, 1.0, 0.3  # short, so that the cap (8 s) makes a short test
TIMINGS = [f"--lease-duration={LEASE:g}s", f"--renew-deadline={RENEW:g}s", f"--retry-period={RETRY * 1000:g}ms"]
CAP = LEASE_CAP_FACTOR * LEASE
A_YEAR = 365 * 24 * 3600

pytestmark = pytest.mark.timeout(90)


@contextlib.contextmanager
def as_app(control_plane: Any, namespace: str) -> Iterator[httpx.Client]:
    """A client with a real token of ServiceAccount `app`: what the app container holds, no more."""
    token = control_plane.token(namespace, operations.SERVICE_ACCOUNT, seconds=600)
    context = ssl.create_default_context(cadata=control_plane.ca_pem.decode())
    with httpx.Client(base_url=control_plane.server, verify=context, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture
def candidates(control_plane: Any, api: httpx.Client, namespace: str, tmp_path: Path) -> Iterator[list[Elector]]:
    """Three electors as ServiceAccount `app`, whose only rights are the election's Role (made here as the
    controller makes it), and one of them leading."""
    operations.grant(api, namespace, ELECTION)
    kubeconfig = control_plane.write_kubeconfig(
        tmp_path / "app.kubeconfig", token=control_plane.token(namespace, operations.SERVICE_ACCOUNT, seconds=600))
    procs = [Elector(pod=f"app-{n}", namespace=namespace, election=ELECTION, kubeconfig=kubeconfig,
                     log_dir=tmp_path, extra=TIMINGS).start() for n in "abc"]
    try:
        for proc in procs:
            proc.wait_ready()
        assert wait_for(lambda: len(leaders(procs)) == 1, 10), [p.logs() for p in procs]
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def forge(client: httpx.Client, namespace: str) -> float:
    """Writes holder `intruder` (no candidate), a lease of a year, renewed now; the monotonic time it was
    stored (retried when a renewal came first: the update must win)."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{ELECTION}"
    for _ in range(20):
        lease = client.get(path).raise_for_status().json()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease["spec"].update(holderIdentity="intruder", leaseDurationSeconds=A_YEAR, acquireTime=now, renewTime=now,
                             leaseTransitions=lease["spec"].get("leaseTransitions", 0) + 1)
        reply = client.put(path, json=lease)
        if reply.status_code == 200:
            return time.monotonic()
        assert reply.status_code == 409, reply.text
    raise AssertionError("the forged record never won against the leader's renewals")


def test_a_forged_year_long_lease_is_taken_over_after_the_cap(control_plane, namespace, candidates):
    checker = Checker(candidates)
    checker.start()
    try:
        with as_app(control_plane, namespace) as app:
            forged_at = forge(app, namespace)
        # the leader sees the foreign holder at its next renewal and steps down within its renew deadline
        assert wait_for(lambda: not leaders(candidates), RENEW + 5), "the leader kept leading over the forged record"
        # then nobody until the cap has run out since the forgery, and one leader soon after it
        new = wait_for(lambda: leaders(candidates), CAP + 10)
        took_over = time.monotonic() - forged_at
    finally:
        checker.stop()
    assert new, f"no leader {CAP + 10:g} s after a forged lease of {A_YEAR} s: the cap ({CAP:g} s) did not hold"
    assert took_over >= CAP - 0.5, f"a leader {took_over:.1f} s after the forgery: the claim was not honoured up to the cap"
    assert checker.overlaps == [], f"two leaders at once: {checker.overlaps}"
    assert any("capped" in proc.logs() for proc in candidates), "no candidate logged the capped claim"
