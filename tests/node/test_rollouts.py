"""Rolling updates on the node with rollout-aware leadership (issue 13, on by default): leadership moves
once, from a pod of the old revision to a Ready pod of the newest, and never two leaders at once.

A Lease watch and a checker polling every pod's elector every 20 ms measure each rollout
(demo/rollouts.py). Timings are printed (`pytest -s`), never asserted: the machines are noisy.
`ELECTOR_ROLLOUT_AWARE=false` runs the same tests with the pods annotated
`elector.dev/rollout-aware: "false"` (the behaviour before issue 13), to look at the harness's numbers.
"""

from __future__ import annotations

import os
import threading
import time

import httpx

from demo import observe, rollouts
from demo.leasetimeline import LeaseEvent, leaderless_gaps, new_holders

ROLLOUT_AWARE = {"false": False, "true": True}.get(os.environ.get("ELECTOR_ROLLOUT_AWARE", ""))


def _measure_all(node_cluster, workload: rollouts.Workload, count: int) -> list[rollouts.Rollout]:
    results = []
    for n in range(count):
        results.append(rollouts.measure(node_cluster, workload))
        print(f"rollout {n + 1}/{count}: {results[-1].line()}")
    return results


def _assert_clean(result: rollouts.Rollout) -> None:
    assert result.sweeps > 50, result.line()
    assert result.overlaps == 0, f"two leaders at once: {result.line()}"
    assert result.final_new and not result.final_deleting, f"not led by a live new pod: {result.line()}"


def test_each_deployment_rollout_moves_leadership_once_to_the_newest_revision(node_cluster, node_api, node_namespace):
    workload = rollouts.deploy(node_api, "Deployment", node_namespace, rollout_aware=ROLLOUT_AWARE)
    results = _measure_all(node_cluster, workload, 1)
    for result in results:
        _assert_clean(result)
        assert result.changes == (1 if result.leader_before_old else 0), result.line()


def test_each_statefulset_rollout_ends_on_the_update_revision_with_at_most_two_moves(
        node_cluster, node_api, node_namespace):
    workload = rollouts.deploy(node_api, "StatefulSet", node_namespace, rollout_aware=ROLLOUT_AWARE)
    highest = f"{workload.name}-{workload.replicas - 1}"
    results = _measure_all(node_cluster, workload, 1)
    for result in results:
        _assert_clean(result)
        # The highest ordinal goes first, before any new pod exists: a leader there hands over to an old
        # pod (the lowest ordinal, updated last), then once more. Any other leader moves once.
        assert result.changes <= 2, result.line()
        if result.leader_before != highest:
            assert result.changes == 1, result.line()


def test_leadership_recovers_when_the_named_successor_is_killed_at_once(node_cluster, node_api, node_namespace):
    workload = rollouts.deploy(node_api, "Deployment", node_namespace, rollout_aware=ROLLOUT_AWARE)
    named: list[LeaseEvent] = []
    deleted: list[tuple[float, int]] = []  # (seconds after the release arrived, HTTP status)

    def kill(event: LeaseEvent) -> None:  # on node_api's open connection: no new TLS handshake first
        reply = node_api.request("DELETE", f"/api/v1/namespaces/{node_namespace}/pods/{event.successor}",
                                 json={"gracePeriodSeconds": 0})
        deleted.append((time.monotonic() - event.at, reply.status_code))

    def on_event(event: LeaseEvent) -> None:
        if not event.holder and event.successor and not named:
            named.append(event)
            threading.Thread(target=kill, args=(event,), daemon=True).start()

    result = rollouts.measure(node_cluster, workload, on_event=on_event, recover=60)
    print(f"successor {named[0].successor if named else '(none named)'} deleted {deleted}; {result.line()}")
    _assert_clean(result)
    assert named, "no release named a successor, so none was killed"
    assert deleted and deleted[0][1] == 200, f"the successor's DELETE: {deleted}"


def _restart_apiserver_midway(node_cluster, workload: rollouts.Workload, timeout: float = 120) -> None:
    """Once 2 of the 3 pods are of the new template, stop and start kube-apiserver."""
    def updated() -> int:
        try:
            with node_cluster.plane.client() as api:
                return int(api.get(workload.path).raise_for_status().json()["status"].get("updatedReplicas", 0))
        except httpx.HTTPError:
            return 0

    observe.wait_for(lambda: updated() >= 2, timeout=timeout, message="2 pods of the new template")
    apiserver = node_cluster.plane.components["kube-apiserver"]
    started = time.monotonic()
    apiserver.stop()
    apiserver.start()
    print(f"kube-apiserver restarted in {time.monotonic() - started:.1f} s, midway through the rollout")


def test_a_rollout_through_an_apiserver_restart_ends_on_the_newest_revision(node_cluster, node_api, node_namespace):
    workload = rollouts.deploy(node_api, "Deployment", node_namespace, rollout_aware=ROLLOUT_AWARE)
    result = rollouts.measure(node_cluster, workload, midway=lambda: _restart_apiserver_midway(node_cluster, workload))
    print(f"through an apiserver restart: {result.changes} leader change(s); {result.line()}")
    _assert_clean(result)


# ------------------------------------------------------------------ the measuring itself (no cluster)


def _lease_event(at: float, holder: str = "", *, lease: float = 15) -> LeaseEvent:
    return LeaseEvent(at, holder, "", at + lease if holder else None)


def test_leader_changes_count_new_holders_only():
    events = [_lease_event(0, "a"), _lease_event(10, "a"), _lease_event(11), _lease_event(11.5, "a"),
              _lease_event(12), _lease_event(12.2, "b"), _lease_event(13, "c"), _lease_event(30, "d")]
    # "a" held the Lease before the window: re-taking its own release is no change; "d" came after it.
    assert new_holders(events, 5, 20) == ["b", "c"]


def test_leaderless_gaps_run_from_a_release_or_an_expiry_to_the_next_holder():
    released = [_lease_event(0, "a"), _lease_event(2, "a"), _lease_event(3), _lease_event(3.25, "b")]
    assert leaderless_gaps(released, 1, 10) == [0.25]
    expired = [_lease_event(0, "a"), _lease_event(2, "a", lease=5), _lease_event(9, "b")]  # a died at 7
    assert leaderless_gaps(expired, 1, 10) == [2.0]
    assert leaderless_gaps(expired[:2], 1, 10) == [3.0]  # still held by the dead pod at the end
    assert round(leaderless_gaps(released, 3.1, 10)[0], 6) == 0.15  # clipped to the window
