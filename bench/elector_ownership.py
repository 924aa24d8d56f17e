"""Lease ownership (issue 12): what it costs in API requests, and how fast the Lease goes with its last Pod.

Each run: Pods for one election (unscheduled: a control plane without a node, so a DELETE removes the
object at once and the garbage collector acts on it), one leader, then candidates joining one at a time
and three at once, one leaving, and the last leaving. Electors run at client-go's default timings
(a renewal every 2 s) with a ServiceAccount bound to the shipped role, their requests counted by their
own `rest_client_requests_total`; the Lease's writes counted by a watch (a write that leaves the spec
as it was is an ownership write). The baseline is the same join without a Pod uid (no ownership).

    .venv/bin/python -m bench.elector_ownership [--quick] [--runs N]
"""
from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common, elections
from tests.election.operations import LeaseWatch, delete_pod, get_lease, make_pods, metric, owner_uids

NAMESPACE = "bench-ownership"


def requests(proc: elections.Elector, **labels: str) -> float:
    return metric(proc, "rest_client_requests_total", **labels)


def ownership_writes(watch: LeaseWatch, since: float) -> int:
    """Writes seen after `since` that changed the Lease's metadata but not its spec."""
    count, spec = 0, None
    for when, kind, obj in list(watch.events):
        if kind == "MODIFIED" and when >= since and obj.get("spec") == spec:
            count += 1
        spec = obj.get("spec")
    return count


def one_run(plane: Any, api: Any, kubeconfig: Path, work: Path, number: int) -> dict[str, Any]:
    election = f"own-{number}"
    names = [f"{election}-{n}" for n in range(6)]
    uids = make_pods(api, NAMESPACE, names, election=election)
    started: list[elections.Elector] = []

    def start(name: str, *, owned: bool = True) -> elections.Elector:
        env = {"POD_UID": uids[name]} if owned else {"POD_UID": ""}
        proc = elections.Elector(pod=name, namespace=NAMESPACE, election=election, kubeconfig=kubeconfig,
                                 log_dir=work, extra=elections.DEFAULT_TIMINGS, env=env).start()
        started.append(proc)
        proc.wait_ready(timeout=20)
        return proc

    def owned_by(*members: str) -> bool:
        return {uids[m] for m in members} <= owner_uids(get_lease(api, NAMESPACE, election))

    watch = LeaseWatch(plane.client(timeout=None), NAMESPACE, election)
    watch.start()
    watch.ready.wait(5)
    try:
        leader = start(names[0])
        elections.wait_for(leader.is_leader, 10)
        out: dict[str, Any] = {}
        # one join at a time
        since = time.monotonic()
        joiner = start(names[1])
        elections.wait_for(lambda: owned_by(names[1]), 10)
        time.sleep(4.5)  # two renewals of the leader after the join
        out["joiner"] = requests(joiner)
        out["join_writes"] = ownership_writes(watch, since)
        out["leader_extra_join"] = requests(leader, code="409") + requests(leader, method="GET") - 1
        # the baseline: the same join without ownership
        plain = start(names[2], owned=False)
        time.sleep(1)
        out["joiner_baseline"] = requests(plain)
        # three at once (a scale-up)
        before = requests(leader, code="409") + requests(leader, method="GET")
        trio = [start(name) for name in names[3:6]]
        elections.wait_for(lambda: owned_by(*names[3:6]), 15)
        time.sleep(4.5)
        out["trio_joiners"] = sum(requests(p) for p in trio) / 3
        out["leader_extra_trio"] = requests(leader, code="409") + requests(leader, method="GET") - before
        # one leaves: SIGTERM (as the kubelet does), then the Pod object goes
        before = requests(leader, code="409") + requests(leader, method="GET")
        joiner.signal(signal.SIGTERM)
        joiner.proc.wait(10)
        since = time.monotonic()
        deleted = delete_pod(api, NAMESPACE, names[1])
        elections.wait_for(lambda: uids[names[1]] not in owner_uids(get_lease(api, NAMESPACE, election)), 10)
        out["prune_ms"] = (time.monotonic() - deleted) * 1000
        time.sleep(4.5)
        out["leave_writes"] = ownership_writes(watch, since)
        out["leader_extra_leave"] = requests(leader, code="409") + requests(leader, method="GET") - before
        # the last ones leave: the Lease goes with the last Pod
        for proc in started:
            if proc.proc and proc.proc.poll() is None:
                proc.signal(signal.SIGTERM)
                proc.proc.wait(10)
        for name in names[:1] + names[2:-1]:
            delete_pod(api, NAMESPACE, name)
        deleted = delete_pod(api, NAMESPACE, names[-1])
        elections.wait_for(lambda: watch.deleted_at() is not None, 15)
        out["gone_ms"] = ((watch.deleted_at() or float("nan")) - deleted) * 1000
        return out
    finally:
        for proc in started:
            proc.stop()


def main() -> None:
    args = common.cli(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="bench-ownership-"))
    plane = common.start_plane(work / "plane")
    runs: list[dict[str, Any]] = []
    try:
        with plane.client() as api:
            common.make_namespace(api, NAMESPACE)
            kubeconfig = elections.grant(plane, api, NAMESPACE, "candidates", work / "sa.kubeconfig")
            for number in range(args.runs):
                runs.append(one_run(plane, api, kubeconfig, work, number))
                common.say(f"run {number + 1}/{args.runs}: {runs[-1]}")
    finally:
        plane.stop()

    def col(key: str) -> list[float]:
        return [run[key] for run in runs]

    rows = [
        common.row("requests by a joining candidate (GET, WATCH, PUT)", "requests", col("joiner"),
                   baseline=col("joiner_baseline"), baseline_name="no ownership",
                   target="one more (the PUT)", check=lambda ours, base: ours - (base or 0) <= 1),
        common.row("Lease writes per join", "writes", col("join_writes"), target="1", check=lambda v, _: v <= 1),
        common.row("extra requests by the leader per join", "requests", col("leader_extra_join"),
                   target="0", check=lambda v, _: v == 0),
        common.row("requests by each of 3 candidates joining at once", "requests", col("trio_joiners")),
        common.row("extra requests by the leader for 3 joins at once", "requests", col("leader_extra_trio")),
        common.row("requests by electors per leave", "requests", col("leader_extra_leave"),
                   target="0", check=lambda v, _: v == 0),
        common.row("Lease writes per leave (the garbage collector's prune)", "writes", col("leave_writes")),
        common.row("Pod DELETE -> its reference pruned", "ms", col("prune_ms")),
        common.row("last Pod DELETE -> Lease deleted", "ms", col("gone_ms"), target="< 1000",
                   check=lambda v, _: v < 1000),
    ]
    common.report("elector_ownership", rows, settings={"runs": args.runs, "timings": elections.DEFAULT_TIMINGS},
                  extra={"runs": runs})


if __name__ == "__main__":
    main()
