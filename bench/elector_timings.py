"""4. Election timings on the real API server, 3 candidates, rounds taken in turn:
failover after SIGKILL of the leader, handover after SIGTERM (the leader releases the Lease), and
the delay from a Lease change to the SSE event at a client of a candidate that stays a follower.

Times are when the bench sees each candidate's own SSE announcement; the Lease change is when the
bench's own watch of the Lease sees the new holder (so the SSE delay is the elector's added delay over
a direct watch). The killed or stopped candidate is restarted (same identity) before the next round.
"""
from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path

from bench import elections, kube, record, stats
from bench.elections import Announcements, Elector

NAMESPACE, ELECTION = "bench-timings", "timings"


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], rounds=20)
    if args.long:
        lease, renew, retry = 15.0, 10.0, 2.0
    elif args.quick:
        lease, renew, retry = 3.0, 2.0, 0.5
    else:
        lease, renew, retry = 5.0, 3.0, 1.0
    rounds = 5 if args.quick else args.rounds
    timings = [f"--lease-duration={lease:g}s", f"--renew-deadline={renew:g}s", f"--retry-period={retry * 1000:g}ms"]
    work = Path(tempfile.mkdtemp(prefix="bench-timings-"))
    plane = kube.start_plane(work / "plane")
    watch = None
    candidates: dict[str, tuple[Elector, Announcements]] = {}
    results: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": [], "sse": []}
    try:
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            kubeconfig = elections.grant(plane, api, NAMESPACE, "app", work / "app.kubeconfig", elections=[ELECTION])
        watch = elections.LeaseWatch(plane, NAMESPACE)

        def launch(pod: str) -> None:
            one = Elector(pod=pod, namespace=NAMESPACE, election=ELECTION, kubeconfig=kubeconfig, log_dir=work,
                          extra=timings).start()
            one.wait_ready(timeout=30)
            candidates[pod] = (one, Announcements(one))

        for pod in ("a", "b", "c"):
            launch(pod)
        for number in range(2 * rounds):
            signum = signal.SIGKILL if number % 2 == 0 else signal.SIGTERM
            leaders = elections.wait_for(lambda: [p for p, (e, _) in candidates.items() if e.is_leader()], 3 * lease)
            if not leaders or len(leaders) != 1:
                raise RuntimeError(f"round {number}: leaders {leaders}")
            old = leaders[0]
            time.sleep(retry)  # let every follower see the current holder first
            elector, _ = candidates.pop(old)
            sent = time.monotonic()
            elector.signal(signum)

            def taken_over() -> tuple[str, float] | None:
                for pod, (_, heard) in candidates.items():
                    when = heard.first(sent, is_leader=True)
                    if when is not None:
                        return pod, when
                return None

            found = elections.wait_for(taken_over, lease + 15)
            if found is None:
                raise RuntimeError(f"round {number}: no new leader {lease + 15:g} s after {signum.name}")
            new, when = found
            results[signum.name].append(when - sent)
            (third,) = [p for p in candidates if p != new]
            changed = elections.wait_for(lambda: watch.holder_since(ELECTION, new, sent), 5)
            announced = elections.wait_for(lambda: candidates[third][1].first(sent, name=new), 5)
            if changed and announced:
                results["sse"].append(announced - changed)
            elector.proc.wait(15) if signum == signal.SIGTERM else elector.stop()
            launch(old)
            record.say(f"round {number + 1}/{2 * rounds}: {signum.name} {old} -> {new} in {when - sent:.2f} s")
    finally:
        if watch is not None:
            watch.stop()
        for elector, _ in candidates.values():
            elector.stop()
        plane.stop()

    kill, term, sse = results["SIGKILL"], results["SIGTERM"], [d * 1000 for d in results["sse"]]
    rows = [
        stats.row("failover after SIGKILL of the leader", "s", kill, baseline=[lease],
                   baseline_name="lease duration", target=f"≤ lease = {lease:g} s (every round; issue 24)",
                   check=lambda v, b: max(kill) <= lease, note=f"max {max(kill):.2f} s"),
        stats.row("handover after SIGTERM of the leader", "s", term, target="p95 ≤ 1 s",
                   check=lambda v, b: stats.percentile(term, 95) <= 1.0,
                   note=f"p95 {stats.percentile(term, 95):.3f} s"),
        stats.row("Lease change → SSE event at a follower's client", "ms", sse, baseline=[0.0],
                   baseline_name="the bench's own watch", target="≤ 100 ms (p95)",
                   check=lambda v, b: stats.percentile(sse, 95) <= 100,
                   note=f"p95 {stats.percentile(sse, 95):.1f} ms"),
    ]
    record.report("elector_timings", rows, settings={"rounds": rounds, "timings": timings, "candidates": 3},
                  extra={"raw": results})


if __name__ == "__main__":
    main()
