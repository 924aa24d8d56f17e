"""5. API load per election, by verb, leader vs followers, counted at the API server (its audit log).

One election, 3 candidates with client-go's default timings (15s / 10s / 2s), each candidate under a
ServiceAccount of its own so the audit log tells them apart. Steady-state windows only (start-up
excluded); a window in which the leader changed is dropped. The baseline is client-go's cost at the
same timings: the leader renews every RetryPeriod (60 / 2 s = 30 PUT/min, no GET: it updates its
cached record); a follower tries every RetryPeriod x (1 + U(0, 1.2)), 3.2 s on average = 18.75 GET/min.
"""
from __future__ import annotations

import collections
import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from bench import elections, kube, record, stats

NAMESPACE, ELECTION = "bench-apiload", "apiload"
RETRY = 2.0
CLIENT_GO = {"leader": {"update": 60 / RETRY}, "follower": {"get": 60 / (RETRY * (1 + 1.2 / 2))}}
POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts:{NAMESPACE}"]
  - level: None
"""


def audit_flags(workdir: Path) -> tuple[list[str], Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    policy, log = workdir / "audit-policy.yaml", workdir / "audit.log"
    policy.write_text(POLICY)
    return [f"--audit-policy-file={policy}", f"--audit-log-path={log}", "--audit-log-format=json"], log


def audit_requests(log: Path) -> Iterator[tuple[float, dict[str, Any]]]:
    """(wall time, audit event) per request: ResponseComplete, or ResponseStarted for a watch (its opening)."""
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["stage"] != ("ResponseStarted" if event["verb"] == "watch" else "ResponseComplete"):
            continue
        yield datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp(), event


def requests_by(log: Path) -> list[tuple[float, str, str]]:
    """(wall time, user, verb) per request."""
    return [(when, event["user"]["username"].rsplit(":", 1)[-1], event["verb"]) for when, event in audit_requests(log)]


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], window=60.0)
    window, count = (30.0, 2) if args.quick else (args.window, args.runs)
    work = Path(tempfile.mkdtemp(prefix="bench-apiload-"))
    flags, log = audit_flags(work / "plane")
    plane = kube.start_plane(work / "plane", apiserver_args=flags)
    candidates: list[elections.Elector] = []
    windows: list[tuple[float, float, str]] = []  # (start, end, leader)
    try:
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            for pod in ("a", "b", "c"):
                kubeconfig = elections.grant(plane, api, NAMESPACE, f"cand-{pod}", work / f"{pod}.kubeconfig",
                                             elections=[ELECTION])
                candidates.append(elections.Elector(pod=f"cand-{pod}", namespace=NAMESPACE, election=ELECTION,
                                                    kubeconfig=kubeconfig, log_dir=work,
                                                    extra=elections.DEFAULT_TIMINGS).start())
        for candidate in candidates:
            candidate.wait_ready(timeout=30)

        def leader() -> str:
            return ",".join(c.pod for c in candidates if c.is_leader())

        elections.wait_for(leader, 30)
        time.sleep(5)
        for number in range(count):
            before, start = leader(), time.time()
            time.sleep(window)
            if leader() == before and "," not in before:
                windows.append((start, time.time(), before))
            record.say(f"window {number + 1}/{count}: leader {before or '-'} -> {leader() or '-'}")
    finally:
        for candidate in candidates:
            candidate.stop()
        plane.stop()

    requests = requests_by(log)
    per_minute: dict[tuple[str, str], list[float]] = collections.defaultdict(list)  # (role, verb) -> values
    for start, end, lead in windows:
        for candidate in candidates:
            role = "leader" if candidate.pod == lead else "follower"
            verbs = collections.Counter(v for t, u, v in requests if u == candidate.pod and start <= t < end)
            for verb in ("get", "update", "create", "list", "watch"):
                per_minute[(role, verb)].append(verbs[verb] * 60 / (end - start))
            per_minute[(role, "total")].append(sum(verbs.values()) * 60 / (end - start))
    # Rare requests (a watch re-opened every 240-300 s, a re-read with it) make a window's median
    # misleading: targets are checked on the mean over all windows, shown in each row's note.
    mean = {key: sum(values) / len(values) for key, values in per_minute.items() if values}
    client_go = lambda role: dict(baseline=[sum(CLIENT_GO[role].values())], baseline_name="client-go")  # noqa: E731
    rows = []
    for role in ("leader", "follower"):
        for verb in ("get", "update", "watch", "create", "list"):
            if verb in CLIENT_GO[role] or mean.get((role, verb)):
                rows.append(stats.row(f"{role}: {verb.upper()} per minute", "req/min", per_minute[(role, verb)],
                                       baseline=[CLIENT_GO[role].get(verb, 0.0)], baseline_name="client-go",
                                       note=f"mean {mean.get((role, verb), 0):.2f}"))
    follower_get, follower_watch = mean.get(("follower", "get"), 0), mean.get(("follower", "watch"), 0)
    rows += [
        # The leader renews once per RetryPeriod, as client-go does (the protocol's floor); it also keeps
        # its watch open, re-opened every 240-300 s: no target of its own, the election's total has one.
        stats.row("leader: all requests per minute", "req/min", per_minute[("leader", "total")], **client_go("leader"),
                   note=f"mean {mean[('leader', 'total')]:.2f}"),
        stats.row("follower: all requests per minute", "req/min", per_minute[("follower", "total")],
                   **client_go("follower"), target="below client-go; GETs only with a watch re-open (no polling)",
                   check=lambda v, b: mean[("follower", "total")] < b and follower_get <= follower_watch,
                   note=f"mean {mean[('follower', 'total')]:.2f}"),
    ]
    election_total = [lead + sum(follow) for lead, follow in zip(
        per_minute[("leader", "total")], zip(*[iter(per_minute[("follower", "total")])] * 2))]
    rows.append(stats.row("one election (leader + 2 followers) per minute", "req/min", election_total,
                           baseline=[sum(CLIENT_GO["leader"].values()) + 2 * sum(CLIENT_GO["follower"].values())],
                           baseline_name="client-go", target="≤ 12/min (issue 24)",
                           check=lambda v, b: sum(election_total) / len(election_total) <= 12.0 + 1e-9,
                           note=f"mean {sum(election_total) / len(election_total):.2f}"))
    record.report("elector_apiload", rows, settings={
        "windows": len(windows), "window_s": window, "timings": elections.DEFAULT_TIMINGS,
        "counted_at": "kube-apiserver audit log (Metadata level, the candidates' ServiceAccounts)",
        "client_go_reference": CLIENT_GO})


if __name__ == "__main__":
    main()
