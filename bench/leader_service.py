"""Leader-only Service: time from a graceful handover (the leader's app calls `POST /release`) to the first
request answered by the new leader, through the ClusterIP and kube-proxy, and the requests answered
by a pod that was not the leader meanwhile. The direct path (the kube-elector controller writes the
EndpointSlice when it sees the new holder on the Lease, examples/leader-service) against the label path
(the controller moves the label elector.dev/leader, a Service selects on it, examples/leader-service-label),
on one local cluster with a real node, handovers alternating. (Until 0.1 the leader's own elector wrote
both; bench/designs.py compares the two designs.)

A client pod requests the ClusterIP every 10 ms (demo.routing). kube-proxy runs with its default
minimum sync period (1 s): a second EndpointSlice change within a second of the first waits for it.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import kube, record, stats
from demo import observe, routing
from localplane import cluster
from localplane.node import pods

MECHANISMS = {"direct (EndpointSlice by the controller)": "leader-service",
              "label (selector elector.dev/leader)": "leader-service-label"}


def _prepare(running: cluster.Cluster, api: Any, namespace: str, example: str, work: Path) -> observe.LeaseWatch:
    kube.make_namespace(api, namespace)
    (work / example).mkdir(parents=True)
    running.kubectl("apply", "-k", routing.overlay(work / example, example), "-n", namespace)
    observe.wait_agreed_leader(api, namespace, count=3)
    ip = api.get(f"/api/v1/namespaces/{namespace}/services/leader-app-leader").json()["spec"]["clusterIP"]
    api.post(f"/api/v1/namespaces/{namespace}/pods", json=routing.client_pod("client", f"http://{ip}/")
             ).raise_for_status()
    observe.wait_for(lambda: any(a.code == 200 for a in routing.parse(
        running.kubectl("logs", "-n", namespace, "client", check=False).stdout)), timeout=60,
        message=f"{namespace}: the leader answers through the Service")
    watch = observe.LeaseWatch(running.plane.client(), namespace, "leader-app")
    watch.start()
    watch.ready.wait(5)
    return watch


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], handovers=10)
    handovers = 3 if args.quick else args.handovers
    work = Path(tempfile.mkdtemp(prefix="bench-leader-service-"))
    running = cluster.Cluster.start(work / "cluster")
    results: dict[str, list[routing.Handover]] = {}
    try:
        running.install_kube_elector()
        with running.plane.client() as api:
            namespaces = {label: f"bench-{example}" for label, example in MECHANISMS.items()}
            watches = {label: _prepare(running, api, namespaces[label], example, work)
                       for label, example in MECHANISMS.items()}
            faults: dict[str, list[tuple[str, float, str]]] = {label: [] for label in MECHANISMS}
            for n in range(handovers):
                for label in MECHANISMS:  # alternating, so both see the same machine
                    namespace = namespaces[label]
                    old = routing.holder(api, namespace)
                    faults[label].append(("release", time.time(), old))
                    # POST /release, not SIGTERM: ten SIGTERMs put the elector into the kubelet's restart back-off.
                    pod = api.get(f"/api/v1/namespaces/{namespace}/pods/{old}").json()
                    code, _ = pods.http_post(pod, 4040, "/release", headers={"Elector-Release": "true"})
                    assert code == 202, code
                    observe.wait_agreed_leader(api, namespace, count=3, timeout=60)
                    time.sleep(1.5)  # past kube-proxy's minimum sync period: each handover starts even
                record.say(f"handover {n + 1}/{handovers} done for both")
            end = time.time()
            for label in MECHANISMS:
                answers = routing.parse(running.kubectl("logs", "-n", namespaces[label], "client").stdout)
                timeline = watches[label].holders_after(0)
                results[label], _ = routing.handovers(answers, faults[label], timeline, end)
                served = routing.served_by_others(answers, timeline)
                record.say(f"{label}: {len(answers)} requests, {len(served)} answered 200 by a pod not holding "
                           f"the Lease; {routing.summary(results[label])}")
    finally:
        running.stop()

    direct, label = (results[k] for k in MECHANISMS)

    def times(hs: list[routing.Handover]) -> list[float | None]:
        return [h.to_new_leader for h in hs]

    def p95(hs: list[routing.Handover]) -> list[float | None]:
        reached = [h.to_new_leader for h in hs if h.to_new_leader is not None]
        return [stats.percentile(reached, 95)] if reached else []

    def not_leader(hs: list[routing.Handover]) -> list[float | None]:
        return [float(h.not_leader + h.unanswered) for h in hs]

    names = list(MECHANISMS)
    rows = [
        stats.row("handover -> first answer from the new leader, direct path", "s", times(direct),
                   baseline=times(label), baseline_name=names[1], target="faster than the label path",
                   check=lambda ours, base: base is not None and ours < base),
        stats.row("  the same, p95 (direct)", "s", p95(direct), baseline=p95(label), baseline_name=names[1],
                   target="label path ≤ 1 s", check=lambda ours, base: base is not None and base <= 1.0),
        stats.row("requests per handover answered 503 or not at all (direct)", "requests", not_leader(direct),
                   baseline=not_leader(label), baseline_name=names[1]),
    ]
    record.report("leader_service", rows, settings={"handovers": handovers, "client_interval_s": 0.01,
                                                    "kube_proxy_min_sync_period_s": 1.0},
                  extra={"handovers": {k: [h.__dict__ for h in v] for k, v in results.items()}})


if __name__ == "__main__":
    main()
