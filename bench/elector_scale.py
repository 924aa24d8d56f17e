"""6. Scale: 100 elections x 3 candidates on the local plane (client-go's default timings).

Per window: Lease requests/s at the API server (its apiserver_request_total, by verb), the API
server's and the electors' CPU, and sweeps asking every candidate `GET /`: an election is sound in
a sweep when exactly one candidate says is_leader and it is the Lease's holder. Baseline: client-go's
request rate at the same timings (30 + 2 x 18.75 requests/min per election).
"""
from __future__ import annotations

import collections
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import elections, kube, procs, record, stats
from bench.elector_apiload import CLIENT_GO

NAMESPACE = "bench-scale"
_REQUESTS = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.M)


def lease_requests(api: Any) -> collections.Counter[str]:
    """apiserver_request_total for leases, summed by verb."""
    counts: collections.Counter[str] = collections.Counter()
    for match in _REQUESTS.finditer(api.get("/metrics").text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("resource") == "leases":
            counts[labels["verb"]] += float(match["value"])
    return counts


def sweep(api: Any, by_election: dict[str, list[elections.Elector]], pool: ThreadPoolExecutor) -> tuple[int, int]:
    """(sound elections, elections) right now."""
    holders = {item["metadata"]["name"]: (item.get("spec") or {}).get("holderIdentity") for item in
               api.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases").json()["items"]}
    flat = [c for group in by_election.values() for c in group]
    saying = dict(zip((c.pod for c in flat), pool.map(lambda c: c.is_leader(timeout=2.0), flat)))
    sound = sum(1 for name, group in by_election.items()
                if [c.pod for c in group if saying[c.pod]] == [holders.get(name)])
    return sound, len(by_election)


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], elections=100, window=60.0)
    count, window, windows = (20, 20.0, 2) if args.quick else (args.elections, args.window, 3)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    plane = kube.start_plane(work / "plane")
    by_election: dict[str, list[elections.Elector]] = {}
    samples: dict[str, list[float]] = collections.defaultdict(list)
    apiserver = plane.components["kube-apiserver"]
    try:
        with plane.client() as api, ThreadPoolExecutor(8) as pool:
            kube.make_namespace(api, NAMESPACE)
            kubeconfig = elections.grant(plane, api, NAMESPACE, "app", work / "app.kubeconfig",
                                         elections=[f"e{e}" for e in range(count)])
            for e in range(count):
                group = [elections.Elector(pod=f"e{e}-{p}", namespace=NAMESPACE, election=f"e{e}",
                                           kubeconfig=kubeconfig, log_dir=work, extra=elections.DEFAULT_TIMINGS).start()
                         for p in "abc"]
                by_election[f"e{e}"] = group
                for candidate in group:
                    candidate.wait_ready(timeout=60)
            record.say(f"{3 * count} candidates ready")
            elections.wait_for(lambda: sweep(api, by_election, pool)[0] == count, 60, interval=1.0)
            flat = [c for group in by_election.values() for c in group]
            for number in range(windows):
                requests0, started = lease_requests(api), time.monotonic()
                cpu0 = sum(procs.cpu_seconds(c.proc.pid) for c in flat)
                api_cpu0 = procs.cpu_seconds(apiserver.pid)
                sweeps = 0
                while time.monotonic() - started < window:
                    sweeps += 1
                    sound, total = sweep(api, by_election, pool)
                    samples["sound"].append(100.0 * sound / total)
                    time.sleep(2.0)
                elapsed = time.monotonic() - started
                delta = lease_requests(api) - requests0
                delta["LIST"] -= sweeps  # the sweeps' own reads
                samples["requests"].append(sum(delta.values()) / elapsed)
                for verb, value in delta.items():
                    samples[verb].append(value / elapsed)
                samples["elector_cpu"].append((sum(procs.cpu_seconds(c.proc.pid) for c in flat) - cpu0) / elapsed)
                samples["apiserver_cpu"].append((procs.cpu_seconds(apiserver.pid) - api_cpu0) / elapsed)
                samples["rss"].append(sum(procs.rss_bytes(c.proc.pid) for c in flat) / 2**20 / len(flat))
                record.say(f"window {number + 1}/{windows}: {samples['requests'][-1]:.1f} lease req/s")
    finally:
        for group in by_election.values():
            for candidate in group:
                candidate.stop()
        plane.stop()

    per_election = sum(CLIENT_GO["leader"].values()) + 2 * sum(CLIENT_GO["follower"].values())
    client_go = [count * per_election / 60]
    rows = [stats.row(f"Lease requests/s, {count} elections", "req/s", samples["requests"], baseline=client_go,
                       baseline_name="client-go", target="below client-go", check=lambda v, b: v < b,
                       note="the bench's own LISTs removed; includes kube-apiserver's own identity Lease")]
    rows += [stats.row(f"  of which {verb}", "req/s", samples[verb]) for verb in sorted(samples)
             if verb.isupper() and any(samples[verb])]
    rows += [
        stats.row(f"elector CPU, all {3 * count} candidates", "cores", samples["elector_cpu"]),
        stats.row("elector CPU per candidate", "ms/s", [v * 1000 / (3 * count) for v in samples["elector_cpu"]]),
        stats.row("kube-apiserver CPU", "cores", samples["apiserver_cpu"]),
        stats.row("RSS per candidate", "MiB", samples["rss"]),
        stats.row("elections with exactly one leader (= the Lease holder), per sweep", "%", samples["sound"],
                   target="100 % in every sweep", check=lambda v, b: min(samples["sound"]) == 100.0,
                   note=f"{len(samples['sound'])} sweeps"),
    ]
    record.report("elector_scale", rows, settings={"elections": count, "candidates": 3 * count, "window_s": window,
                                                   "windows": windows, "timings": elections.DEFAULT_TIMINGS})


if __name__ == "__main__":
    main()
