"""Rollout-aware leadership: leader changes and time without a leader per rolling update of the sample
app (a Deployment, 3 replicas, maxSurge 1, maxUnavailable 0), the feature on (the default) against off
(pod annotation `elector.dev/rollout-aware: "false"`), on one local cluster with a real node.

Since 0.2 the kube-elector controller decides (docs/elector.md, "Rollouts"): on, it publishes
`elector.dev/hand-over-to` on the Lease while a Ready pod of a newer revision exists, and the leader hands
over to it; off (the holder's pod annotated), it publishes no such hint, so the leader keeps leading until
its pod is deleted, and its release on SIGTERM still names the controller's `elector.dev/next-leader`.
(In 0.1 each elector watched the pods itself and off named nobody.)

Switching the setting is itself a rollout whose old and new pods run different settings, so each
block is a switch rollout (not measured), then a measured rollout with that setting; blocks alternate
on, off, on, ... Each measured rollout (demo/rollouts.py): a Lease watch (holder changes, intervals
without a valid holder, a successor named on a release) and a checker polling every pod's elector
every 20 ms (two leaders at once).

Where the leader sits when a rollout starts decides what "off" does: a ReplicaSet deletes its newest
pods first, so a leader on the oldest pod goes last and moves once, on or off. After a switch rollout
the leader is always there; in a real cluster it can be on any pod (after failovers, restarts). So
before each measured rollout the bench places the leader, by the elector's own API only: the leader's
app asks it to hand over (POST localhost:4040/release inside its pod), it sits out a lease duration
(on: naming a successor, who declines at once while it sits out itself), until the leader is the pod
of the chosen age: youngest, middle, oldest, youngest, ... by creation time, the same sequence in both
modes; then a lease duration + 1 s, so every pod is back in the race. Short timings (lease 4 s, renew
3 s, retry 1 s, as demo/routing.py's overlay) keep that quick, in both modes; a handover's gap does not
depend on them (it is watch-driven).
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench import kube, record, stats
from demo import observe, rollouts
from demo.leasetimeline import LeaseTimeline
from localplane import cluster
from localplane.node import pods

MODES = {"on (default)": True, 'off (rollout-aware: "false")': False}
GAP_TARGET = 0.1  # s, median handover gap
POSITIONS = ("youngest", "middle", "oldest")  # the leader's pod before each measured rollout, in turn
TIMINGS = {"elector.dev/lease-duration": "4s", "elector.dev/renew-deadline": "3s", "elector.dev/retry-period": "1s"}
LEASE = float(TIMINGS["elector.dev/lease-duration"].removesuffix("s"))  # s
PLACE_STEPS, PLACE_ATTEMPTS = 5, 3  # releases per attempt; attempts (the leader moved during the wait)


class PlacementError(RuntimeError):
    """The leader could not be moved onto the chosen pod."""


def _by_age(api: Any, workload: rollouts.Workload) -> list[str]:
    """The live pods, oldest first (creation time, then name, as the elector ranks them)."""
    live = [p["metadata"] for p in observe.list_pods(api, workload.namespace, workload.selector)
            if not p["metadata"].get("deletionTimestamp")]
    return [m["name"] for m in sorted(live, key=lambda m: (m["creationTimestamp"], m["name"]))]


def _agreed(api: Any, workload: rollouts.Workload) -> str:
    return observe.wait_agreed_leader(api, workload.namespace, count=workload.replicas, selector=workload.selector)


def _release(api: Any, workload: rollouts.Workload, leader: str) -> None:
    """What the leader's app does to hand over: POST localhost:4040/release, inside its pod."""
    pod = api.get(f"/api/v1/namespaces/{workload.namespace}/pods/{leader}").raise_for_status().json()
    code, body = pods.http_post(pod, observe.ELECTOR_PORT, "/release", headers={"Elector-Release": "true"})
    if code != 202:
        raise PlacementError(f"POST /release in {leader}: {code} {body!r}")


def _place(api: Any, workload: rollouts.Workload, position: str, timeline: LeaseTimeline) -> tuple[str, int]:
    releases = 0
    for attempt in range(1, PLACE_ATTEMPTS + 1):
        ranked = _by_age(api, workload)
        target = {"oldest": ranked[0], "middle": ranked[len(ranked) // 2], "youngest": ranked[-1]}[position]
        leader = _agreed(api, workload)
        for _ in range(PLACE_STEPS):
            if leader == target:
                break
            _release(api, workload, leader)
            releases += 1
            observe.wait_for(lambda was=leader: timeline.holder not in ("", was), timeout=3 * LEASE,
                             message=f"a new Lease holder after {leader}'s release")
            leader = _agreed(api, workload)
        if leader == target:
            time.sleep(LEASE + 1)  # every pod back in the race
            leader = _agreed(api, workload)
            if leader == target:
                return target, releases
        record.say(f"placing the leader on the {position} pod {target} ({' < '.join(ranked)}): attempt "
                   f"{attempt} ended on {leader}")
    raise PlacementError(f"leader not placed on the {position} pod in {PLACE_ATTEMPTS} attempts")


def _diagnosis(the_cluster: cluster.Cluster, api: Any, workload: rollouts.Workload, timeline: LeaseTimeline) -> str:
    """The Lease's events during the placement and each pod's elector log: what a failed placement did."""
    first = timeline.events[0].at if timeline.events else 0.0
    lines = [f"Lease {workload.namespace}/{workload.name} during the placement:"]
    lines += [f"  +{e.at - first:7.3f} s holder={e.holder or '-'} successor={e.successor or '-'}"
              for e in timeline.events]
    for name in _by_age(api, workload):
        log = the_cluster.kubectl("logs", "-n", workload.namespace, name, "-c", "elector", "--tail=40", check=False)
        lines += [f"elector log of {name}:", log.stdout.rstrip(), log.stderr.rstrip()]
    return "\n".join(lines)


def place(the_cluster: cluster.Cluster, api: Any, workload: rollouts.Workload, position: str) -> tuple[str, int]:
    """Move leadership onto the pod at `position` ("youngest", "middle", "oldest" by creation time) by
    releases of the leader (POST /release), and leave it there a lease duration + 1 s; (that pod, the
    releases it took). Failing, says the Lease's events and the electors' logs and raises."""
    with LeaseTimeline(the_cluster.plane.client, workload.namespace, workload.name) as timeline:
        try:
            return _place(api, workload, position, timeline)
        except (PlacementError, TimeoutError, OSError):
            record.say(_diagnosis(the_cluster, api, workload, timeline))
            raise


def _run(count: int) -> tuple[dict[str, list[rollouts.Rollout]], dict[str, list[int]]]:
    """The measured rollouts of each mode, and the releases each placement took."""
    work = Path(tempfile.mkdtemp(prefix="bench-rollouts-"))
    running = cluster.Cluster.start(work / "cluster")
    results: dict[str, list[rollouts.Rollout]] = {mode: [] for mode in MODES}
    releases: dict[str, list[int]] = {mode: [] for mode in MODES}
    try:
        running.install_kube_elector()
        with running.plane.client() as api:
            namespace = kube.make_namespace(api, "bench-rollouts")
            workload = rollouts.deploy(api, "Deployment", namespace, rollout_aware=False, annotations=TIMINGS)
            for n in range(count):
                position = POSITIONS[n % len(POSITIONS)]
                for mode, aware in MODES.items():
                    rollouts.roll(running, api, workload, rollout_aware=aware, switch=True)
                    _agreed(api, workload)
                    target, took = place(running, api, workload, position)
                    record.say(f"{mode} {n + 1}/{count}: leader placed on the {position} pod {target} "
                               f"after {took} release(s)")
                    releases[mode].append(took)
                    results[mode].append(dataclasses.replace(rollouts.measure(running, workload), start=position))
                    record.say(f"{mode} {n + 1}/{count}: {results[mode][-1].line()}")
    finally:
        running.stop()
    return results, releases


def _from_old(results: list[rollouts.Rollout]) -> list[rollouts.Rollout]:
    return [r for r in results if r.leader_before_old]


def _distribution(results: list[rollouts.Rollout]) -> str:
    counts = collections.Counter(r.changes for r in results)
    return " ".join(f"{k}:{counts[k]}" for k in sorted(counts)) or "-"


def _by_start(results: list[rollouts.Rollout], sep: str = " | ") -> str:
    """The changes' distribution per starting position: "youngest 1:3 2:1 | middle 1:3 | oldest 1:3"."""
    return sep.join(f"{p} {_distribution([r for r in results if r.start == p])}" for p in POSITIONS
                      if any(r.start == p for r in results))


def _describe(mode: str, results: list[rollouts.Rollout]) -> str:
    """One mode's figures in a line: what the table's spreads do not show."""
    old = _from_old(results)
    gaps = [g for r in results for g in r.gaps]
    leaderless = [r.leaderless for r in results]
    mean = statistics.mean(r.changes for r in old) if old else float("nan")
    median_gap = statistics.median(gaps) if gaps else float("nan")
    return (f"{mode}: leader started on an old pod in {len(old)}/{len(results)}; changes per such rollout mean "
            f"{mean:.2f} ({_distribution(old)}; by the leader's starting pod: {_by_start(old)}); leaderless per "
            f"rollout median {statistics.median(leaderless):.3f} s, "
            f"max {max(leaderless):.3f} s; handover gap median {median_gap:.3f} s, "
            f"p90 {stats.percentile(gaps, 90):.3f} s, max {max(gaps, default=float('nan')):.3f} s; overlaps "
            f"{sum(r.overlaps for r in results)}; a release named a successor in "
            f"{sum(bool(r.successors) for r in results)}/{len(results)}")


def _rows(on: list[rollouts.Rollout], off: list[rollouts.Rollout]) -> list[stats.Row]:
    def compare(figure: str, unit: str, of: Callable[[list[rollouts.Rollout]], list[float]], **options: Any
                ) -> stats.Row:
        """A row of `of(on)` against `of(off)`, the baseline."""
        return stats.row(figure, unit, of(on), baseline=of(off), baseline_name="off", **options)

    def how_many(what: Callable[[rollouts.Rollout], Any]) -> Callable[[list[rollouts.Rollout]], list[float]]:
        return lambda results: [float(sum(bool(what(r)) for r in results))]

    def gaps(results: list[rollouts.Rollout]) -> list[float]:
        return [g for r in results for g in r.gaps]

    return [
        compare("leader changes per rollout whose leader started on an old pod", "changes",
                lambda results: [r.changes for r in _from_old(results)], target="exactly 1 in every such rollout",
                check=lambda *_: all(r.changes == 1 for r in _from_old(on)),
                note=f"on {_by_start(_from_old(on), ', ')}; off {_by_start(_from_old(off), ', ')}"),  # no | in cells
        compare("rollouts whose leader started on an old pod", "rollouts", how_many(lambda r: r.leader_before_old),
                note=f"of {len(on)} and {len(off)}"),
        compare("time without a valid Lease holder per rollout", "s", lambda results: [r.leaderless for r in results]),
        compare("handover gap (release or expiry -> next holder)", "s", gaps,
                target=f"median ≤ {GAP_TARGET * 1000:.0f} ms", check=lambda ours, _: ours <= GAP_TARGET,
                note=f"p90 {stats.percentile(gaps(on), 90):.3f} s, off {stats.percentile(gaps(off), 90):.3f} s"),
        compare("checker sweeps with two leaders, per rollout", "sweeps", lambda results: [r.overlaps for r in results],
                target="0 in every rollout", check=lambda *_: all(r.overlaps == 0 for r in on)),
        compare("rollouts with a release naming a successor", "rollouts", how_many(lambda r: r.successors)),
        compare("rollouts ending on a live pod of the newest revision", "rollouts",
                how_many(lambda r: r.final_new and not r.final_deleting), target="every rollout",
                check=lambda ours, _: ours == len(on)),
        compare("rollout duration (trigger -> rollout status complete)", "s",
                lambda results: [r.took for r in results]),
    ]


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], rollouts=10)
    count = 3 if args.quick else args.rollouts
    results, releases = _run(count)
    on, off = (results[mode] for mode in MODES)
    for mode, measured in results.items():
        print(_describe(mode, measured), flush=True)
    record.report("rollouts", _rows(on, off),
                  settings={"kind": "Deployment", "replicas": 3, "max_surge": 1, "max_unavailable": 0,
                            "measured_rollouts_per_mode": count, "checker_interval_s": 0.02, "settle_s": 2.0,
                            "pod_annotations": TIMINGS, "leader_start_positions": list(POSITIONS)},
                  extra={"rollouts": {mode: [dict(dataclasses.asdict(r), changes=r.changes,
                                                  leader_before_old=r.leader_before_old, final_new=r.final_new,
                                                  placement_releases=took)
                                             for r, took in zip(measured, releases[mode])]
                                      for mode, measured in results.items()}})


if __name__ == "__main__":
    main()
