"""Election chaos: random faults, a checker polling every elector every 50 ms, never two leaders.

`make test` runs one round of each fault kind; `make chaos` runs CHAOS_ROUNDS (default there: 60).
"""

from __future__ import annotations

import os
import random
import time
import uuid

import pytest

from localplane.process import tcpproxy
from tests.chaos import faults
from localplane.kube_elector.electors import Checker, Elector, leaders, wait_for

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "0")) or len(faults.FAULTS)


@pytest.fixture
def cluster(control_plane, api, namespace, controller, pods, tmp_path):
    # The candidates' pods (ServiceAccount `app`): the controller makes the election's Role and Lease, as in
    # production, and makes the Lease again after the lease-deleted fault (the electors may not create it).
    uids = pods("chaos-a", "chaos-b", "chaos-c", election="chaos")
    token = control_plane.token(namespace, "app", seconds=3 * 3600)
    backend = [("127.0.0.1", int(control_plane.server.rsplit(":", 1)[1]))]
    members = []

    def spawn(pod: str, proxy: tcpproxy.TcpProxy) -> Elector:
        kubeconfig = faults.kubeconfig_via(control_plane, proxy, token, tmp_path / f"{pod}.kubeconfig")
        return Elector(pod=pod, namespace=namespace, election="chaos", kubeconfig=kubeconfig, log_dir=tmp_path,
                       env={"POD_UID": uids[pod]}).start()

    def restart(member: faults.Member) -> None:
        member.elector = spawn(member.elector.pod, member.proxy)
        checker.electors[:] = [m.elector for m in members]

    for pod in ("chaos-a", "chaos-b", "chaos-c"):
        proxy = tcpproxy.TcpProxy(backend).start()
        members.append(faults.Member(spawn(pod, proxy), proxy))
    checker = Checker([m.elector for m in members])
    c = faults.Cluster(control_plane, api, namespace, "chaos", members, restart)
    for m in members:
        m.elector.wait_ready()
    checker.start()
    yield c, checker
    checker.stop()
    for m in members:
        m.elector.stop()
        m.proxy.stop()


def test_chaos_rounds_never_show_two_leaders(cluster):
    c, checker = cluster
    rng = random.Random(os.environ.get("CHAOS_SEED", uuid.uuid4().hex))
    kinds = list(faults.FAULTS)
    plan = [kinds[i % len(kinds)] for i in range(ROUNDS)]
    rng.shuffle(plan)
    gaps: dict[str, list[float]] = {k: [] for k in kinds}
    c.leader()
    rounds: list[tuple[float, str]] = []
    for kind in plan:
        before = c.leader().elector.pod
        started = time.monotonic()
        rounds.append((started, kind))
        faults.FAULTS[kind](c)
        after = wait_for(lambda: (lambda found: found if len(found) == 1 else None)(leaders(c.electors)), 30)
        assert after, f"no single leader after {kind}"
        # The longest stretch without any leader since the fault began, from the checker's record.
        gaps[kind].append(faults.longest_gap(checker.history, started))
        c.log.append(f"{kind}: leader {before} -> {after[0].pod}")
        time.sleep(0.3)
    _print_table(ROUNDS, gaps, checker)
    during = [(when, who, next((k for t, k in reversed(rounds) if t <= when), "before the first fault"))
              for when, who in checker.overlaps]
    assert checker.overlaps == [], f"two leaders at once (when, who, during which fault): {during[:5]}"
    assert all(m.elector.proc.poll() is None for m in c.members), "an elector exited on its own"


def _print_table(rounds: int, gaps: dict[str, list[float]], checker: Checker) -> None:
    print(f"\nchaos: {rounds} rounds, {checker.sweeps} checker sweeps (50 ms), overlaps found: {len(checker.overlaps)}")
    print(f"{'fault':<24}{'rounds':>7}{'longest leaderless gap (s)':>30}")
    for kind, values in gaps.items():
        if values:
            print(f"{kind:<24}{len(values):>7}{max(values):>30.2f}")
