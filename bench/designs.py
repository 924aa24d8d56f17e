"""The two designs side by side in one run on the local node (issue 20, item 6): 0.1, where each elector
held the rights (it created its Lease, watched its namespace's pods, moved the leader label, wrote the
leader EndpointSlice and the Events, with RoleBindings the webhook made at admission), and 0.2, where the
kube-elector controller does all of that and an elector may only get, update and watch its own Lease.

One cluster (localplane.cluster.Cluster, with a real node). Each block installs one design, measures it,
deletes what it deployed and uninstalls it; blocks alternate 0.1, 0.2 (`--blocks 4`: 0.1, 0.2, 0.2, 0.1).
0.1 is this repository's commit 48a1cd3, as tests/node/test_upgrade.py installs it: its images built by
`tools/build-release-images.sh 48a1cd3 v0.1` (kept if they exist), imported into the node, and its own
manifests/ (git archive) with the images mapped to :v0.1. 0.2 is localplane/overlays/kube-elector (the
working tree's manifests/, images :dev as `make images` built them).

Per block, in this order:
  api load    K elections x 3 candidates (the pause image as app, client-go's timings 15s/10s/2s), idle,
              left running through the next three measurements (at least --window s): requests per
              election per minute
  pod start   opted-in pods, one at a time, each the first of a new election: POST (admission included),
              CREATE -> Ready, CREATE -> the pod holds its election's Lease
  rollouts    the sample app (3 replicas, maxSurge 1, maxUnavailable 0, timings 4s/3s/1s) as
              bench/rollouts.py with the feature on: the leader placed on the youngest, middle, oldest pod
              in turn (POST /release in its pod), then a measured rollout (demo/rollouts.py: a Lease watch,
              demo/leasetimeline.py, and a checker polling every elector every 20 ms, demo/checker.py)
  routing     examples/leader-service (a selector-less Service whose EndpointSlice names the leader) as
              bench/leader_service.py: SIGTERM to the leader's elector, time until a client pod polling the
              ClusterIP every 10 ms gets its first answer from the new leader
  watches     a Deployment of N replicas (30; 10 with --quick; the pause image as app, maxSurge 25 %,
              maxUnavailable 0) rolled once: WATCH requests open on the API server
              (apiserver_longrunning_requests{verb="WATCH"}, by resource) sampled every second, with the
              rest of the block's workloads deleted first; the idle cluster's figure before it as reference

Every measurement has a namespace of its own, and the API server an audit policy that logs the requests
of the ServiceAccounts of those namespaces and of kube-elector (as bench/elector_apiload.py counts; Cluster.start
does not take kube-apiserver flags yet: the bench wraps ControlPlane.start). A request counts for a
measurement when an elector of its namespace made it, or a kube-elector account (0.2: the controller, 0.1:
the webhook's RoleBindings at admission) made it on an object of that namespace: API requests per idle
election per minute, and per measurement in all. Apart, per minute, what does not grow with elections: the
controller's own election and cluster-wide requests (its informers), the webhook's certificate upkeep.

    .venv/bin/python -m bench.designs [--quick] [--blocks N] [--rollouts N] [--handovers N] ...
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from bench import elector_apiload, kube, record, stats
from bench import leader_service as routing_bench
from bench import rollouts as rollouts_bench
from demo import observe, rollouts, routing
from localplane import cluster
from localplane.kube_elector import release
from localplane.node import images
from localplane.process import binaries

DESIGNS = {"0.1": "0.1: electors with the rights (webhook RoleBindings)",
           "0.2": "0.2: the controller holds the rights"}
COLUMNS = ("0.2 (controller) median [min–max]", "0.1 (electors) median [min–max]")
KE = "kube-elector"
ELECTION_LEASE = "kube-elector-controller"  # the 0.2 controller's own election, in namespace kube-elector
_WATCHES = re.compile(r'^apiserver_longrunning_requests\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.M)


# ------------------------------------------------------------------ the two installs


def install(running: cluster.Cluster, design: str, old_overlay: Path) -> float:
    started = time.monotonic()
    if design == "0.2":
        running.install_kube_elector(timeout=180)
    else:
        running.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(old_overlay), timeout=180)
        running.kubectl("-n", KE, "rollout", "status", "deployment/kube-elector-webhook", "--timeout=180s",
                        timeout=190)
        running.wait_webhook_serving(timeout=120)
    return time.monotonic() - started


def uninstall(running: cluster.Cluster, design: str, old_overlay: Path) -> None:
    overlay = cluster.OVERLAYS / "kube-elector" if design == "0.2" else old_overlay
    running.kubectl("delete", "-k", str(overlay), "--ignore-not-found", "--wait=true", timeout=300)


def delete_namespaces(running: cluster.Cluster, names: list[str]) -> None:
    if names:
        running.kubectl("delete", "namespace", *names, "--ignore-not-found", "--wait=true", timeout=300)


def audit_flags(policy_groups: list[str], work: Path) -> tuple[list[str], Path]:
    """kube-apiserver flags for an audit log of the requests of these groups (Metadata level), and the log."""
    work.mkdir(parents=True, exist_ok=True)
    policy, log = work / "audit-policy.yaml", work / "audit.log"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [\"RequestReceived\"]\nrules:\n"
                      f"  - level: Metadata\n    userGroups: {json.dumps(policy_groups)}\n  - level: None\n")
    return [f"--audit-policy-file={policy}", f"--audit-log-path={log}", "--audit-log-format=json",
            "--audit-log-maxsize=0"], log


# ------------------------------------------------------------------ workloads


def light_template(app: str, annotations: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """An opted-in pod whose app is the pause image: what is measured is the elector and the control plane."""
    return {
        "metadata": {"labels": {"app": app}, "annotations": {"elector.dev/inject": "true", **(annotations or {})}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": images.names().pause, "imagePullPolicy": "Never",
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}}],
        },
    }


def light_deployment(app: str, replicas: int, *, max_surge: Any = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": 0}},
                     "template": light_template(app)}}


def create(api: Any, namespace: str, resource: str, body: dict[str, Any]) -> Any:
    group = "/api/v1" if resource == "pods" else "/apis/apps/v1"
    return api.post(f"{group}/namespaces/{namespace}/{resource}", json=body).raise_for_status()


def holder(api: Any, namespace: str, name: str) -> str:
    reply = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    return ((reply.json().get("spec") or {}).get("holderIdentity") or "") if reply.status_code == 200 else ""


def wait_rolled_out(running: cluster.Cluster, namespace: str, name: str, timeout: float = 300) -> None:
    running.kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", f"--timeout={int(timeout)}s",
                    timeout=timeout + 15)


# ------------------------------------------------------------------ the measurements of one block


def api_load(running: cluster.Cluster, api: Any, namespace: str, elections: int) -> float:
    """K idle elections, left running while the block's next measurements go on (so the count spans
    minutes and catches the watches' re-opens every 4-5 min); the wall-clock start of the count."""
    kube.make_namespace(api, namespace)
    for e in range(elections):
        create(api, namespace, "deployments", light_deployment(f"load-{e}", 3))
    for e in range(elections):
        wait_rolled_out(running, namespace, f"load-{e}")
        observe.wait_agreed_leader(api, namespace, count=3, selector=f"app=load-{e}", timeout=120)
    time.sleep(10)  # past start-up: every candidate has joined, read and opened its watches
    return time.time()


def pod_starts(api: Any, namespace: str, count: int) -> list[dict[str, float]]:
    """Opted-in pods one at a time, each a new election: POST, CREATE -> Ready, CREATE -> holds the Lease."""
    kube.make_namespace(api, namespace)
    out = []
    for n in range(count):
        name = f"start-{n}"
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **light_template(name)["metadata"]},
                "spec": light_template(name)["spec"]}
        sent = time.monotonic()
        create(api, namespace, "pods", body)
        answered = time.monotonic()
        ready = leads = None
        deadline = sent + 120
        while (ready is None or leads is None) and time.monotonic() < deadline:
            now = time.monotonic()
            if ready is None:
                pod = api.get(f"/api/v1/namespaces/{namespace}/pods/{name}").json()
                if any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get(
                        "conditions", [])):
                    ready = now - sent
            if leads is None and holder(api, namespace, name) == name:
                leads = now - sent
            time.sleep(0.05)
        out.append({"post_ms": (answered - sent) * 1000, "ready_s": ready, "leads_s": leads})
        record.say(f"  pod start {n + 1}/{count}: {out[-1]}")
    return out


def rollout_runs(running: cluster.Cluster, api: Any, namespace: str, count: int, place: bool
                 ) -> list[rollouts.Rollout]:
    kube.make_namespace(api, namespace)
    workload = rollouts.deploy(api, "Deployment", namespace, annotations=rollouts_bench.TIMINGS)
    out = []
    for n in range(count):
        position = rollouts_bench.POSITIONS[n % len(rollouts_bench.POSITIONS)]
        observe.wait_agreed_leader(api, namespace, count=workload.replicas, selector=workload.selector)
        if place:
            rollouts_bench.place(running, api, workload, position)
        measured = rollouts.measure(running, workload)
        out.append(dataclasses.replace(measured, start=position if place else ""))
        record.say(f"  rollout {n + 1}/{count}: {out[-1].line()}")
    return out


def handovers(running: cluster.Cluster, api: Any, namespace: str, count: int, work: Path) -> list[routing.Handover]:
    watch = routing_bench._prepare(running, api, namespace, "leader-service", work)
    faults: list[tuple[float, str]] = []
    for _ in range(count):
        old = routing.holder(api, namespace)
        faults.append((time.time(), old))
        routing.signal_elector(api, namespace, old, signal.SIGTERM)
        observe.wait_agreed_leader(api, namespace, count=3, timeout=60)
        time.sleep(1.5)  # past kube-proxy's minimum sync period: each handover starts even
    end = time.time()
    answers = routing.parse(running.kubectl("logs", "-n", namespace, "client").stdout)
    timeline = watch.holders_after(0)
    out = []
    for i, (at_fault, old) in enumerate(faults):
        until = faults[i + 1][0] if i + 1 < len(faults) else end
        new = next(((w, who) for w, who in timeline if at_fault <= w < until and who and who != old), None)
        if new is not None:
            out.append(routing.analyse(answers, what="SIGTERM", fault=at_fault, at=new[0], old=old, new=new[1],
                                       until=until))
    record.say(f"  routing: {routing.summary(out)}")
    return out


def open_watches(api: Any) -> collections.Counter[str]:
    """WATCH requests open on the API server now, by resource (apiserver_longrunning_requests)."""
    counts: collections.Counter[str] = collections.Counter()
    for match in _WATCHES.finditer(api.get("/metrics").text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") == "WATCH":
            counts[labels.get("resource", "")] += int(float(match["value"]))
    return counts


class WatchSampler(threading.Thread):
    def __init__(self, client: Callable[[], Any], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.client, self.interval = client, interval
        self.samples: list[collections.Counter[str]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with self.client() as api:
            while not self._halt.is_set():
                with contextlib.suppress(Exception):
                    self.samples.append(open_watches(api))
                self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def wide_rollout(running: cluster.Cluster, api: Any, namespace: str, replicas: int) -> dict[str, Any]:
    """Open WATCHes: the idle cluster, then during one rollout of a Deployment of `replicas` candidates."""
    idle = WatchSampler(running.plane.client)
    idle.start()
    time.sleep(5)
    idle.stop()
    kube.make_namespace(api, namespace)
    create(api, namespace, "deployments", light_deployment("wide", replicas, max_surge="25%"))
    wait_rolled_out(running, namespace, "wide", timeout=600)
    workload = rollouts.Workload("Deployment", namespace, "wide", replicas)
    observe.wait_for(lambda: holder(api, namespace, "wide"), timeout=60, message="a leader of the wide election")
    time.sleep(5)
    sampler = WatchSampler(running.plane.client)
    sampler.start()
    started = time.monotonic()
    try:
        rollouts.roll(running, api, workload, timeout=900)
    finally:
        sampler.stop()
    took = time.monotonic() - started

    def stats(samples: list[collections.Counter[str]], resource: Optional[str]) -> dict[str, float]:
        values = [sum(s.values()) if resource is None else s.get(resource, 0) for s in samples] or [0]
        return {"max": max(values), "median": statistics.median(values)}

    out = {"took_s": took, "samples": len(sampler.samples)}
    for label, resource in (("all", None), ("pods", "pods"), ("leases", "leases")):
        out[f"idle_{label}"] = stats(idle.samples, resource)
        out[f"rollout_{label}"] = stats(sampler.samples, resource)
    record.say(f"  watches: {out}")
    return out


def requests_in(log: Path, start: float, end: float) -> list[dict[str, Any]]:
    """Audit events of the requests received in [start, end)."""
    return [event for when, event in elector_apiload.audit_requests(log) if start <= when < end]


PARTS = ("load", "start", "roll", "svc", "wide")  # a block's namespaces: designs-<block>-<part>


def api_accounting(log: Path, names: dict[str, str], block: tuple[float, float], idle: tuple[float, float],
                   elections: int) -> dict[str, Any]:
    """The block's requests from the audit log, attributed:

    - to a namespace of the block (a measurement): the electors' (that namespace's ServiceAccounts) and the
      kube-elector accounts' requests on that namespace's objects (0.2: the controller's Lease, Role,
      RoleBinding, hints, Events, slices, label patches; 0.1: the webhook's RoleBindings at admission);
    - per idle election per minute: the same for the api-load namespace, within `idle`;
    - per minute, what does not grow with elections: the controller's own election (Leases of
      kube-elector), its cluster-wide requests (the pod and Lease informers, the pass over 0.1's
      RoleBindings), the webhook's certificate upkeep."""
    by_ns = {ns: part for part, ns in names.items()}
    electors: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    fixed: collections.Counter[str] = collections.Counter()
    detail: collections.Counter[str] = collections.Counter()
    idle_electors = idle_ours = 0
    for event in requests_in(log, *block):
        user = event["user"]["username"]
        ref = event.get("objectRef") or {}
        when = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        in_idle = idle[0] <= when < idle[1]
        what = f"{event['verb']} {ref.get('resource', '')}"
        account_ns, _, account = user.removeprefix("system:serviceaccount:").partition(":")
        if account_ns in by_ns:
            part = by_ns[account_ns]
            electors[part] += 1
            detail[f"{part}: electors {what}"] += 1
            idle_electors += part == "load" and in_idle
        elif account_ns == KE:
            part = by_ns.get(ref.get("namespace", ""), "")
            if part:
                ours[part] += 1
                detail[f"{part}: {account} {what}"] += 1
                idle_ours += part == "load" and in_idle
            else:
                kind = ("webhook" if account == "kube-elector-webhook" else "controller's own election"
                        if ref.get("namespace") == KE and ref.get("resource") == "leases" else
                        "controller, cluster-wide" if not ref.get("namespace") else f"{account}, other")
                fixed[kind] += 1
                detail[f"fixed: {account} {what}"] += 1
    minutes, idle_minutes = (block[1] - block[0]) / 60, (idle[1] - idle[0]) / 60
    return {"electors": dict(electors), "kube_elector": dict(ours),
            "idle_electors_per_election": idle_electors / elections / idle_minutes,
            "idle_kube_elector_per_election": idle_ours / elections / idle_minutes,
            "fixed_per_min": {k: v / minutes for k, v in fixed.items()},
            "detail": dict(sorted(detail.items())), "block_s": block[1] - block[0], "idle_s": idle[1] - idle[0]}


# ------------------------------------------------------------------ the run


@dataclasses.dataclass
class Block:
    design: str
    number: int
    install_s: float = 0.0
    load: dict[str, Any] = dataclasses.field(default_factory=dict)
    starts: list[dict[str, float]] = dataclasses.field(default_factory=list)
    rollouts: list[rollouts.Rollout] = dataclasses.field(default_factory=list)
    handovers: list[routing.Handover] = dataclasses.field(default_factory=list)
    watches: dict[str, Any] = dataclasses.field(default_factory=dict)


def order(blocks: int) -> list[str]:
    """0.1, 0.2, then each pair reversed (ABBA): drift in the machine's load hits both alike."""
    pairs = [("0.1", "0.2") if n % 2 == 0 else ("0.2", "0.1") for n in range((blocks + 1) // 2)]
    return [d for pair in pairs for d in pair][:blocks]


def run(args: Any) -> list[Block]:
    work = Path(tempfile.mkdtemp(prefix="bench-designs-"))
    sequence = order(args.blocks)
    groups = [f"system:serviceaccounts:designs-{n}-{part}" for n in range(len(sequence)) for part in PARTS]
    groups.append(f"system:serviceaccounts:{KE}")
    flags, audit_log = audit_flags(groups, work / "audit")
    running = cluster.Cluster.start(work / "cluster", apiserver_args=flags)
    blocks: list[Block] = []
    try:
        old_overlay = release.overlay(running, work / "release-0.1")
        for number, design in enumerate(sequence):
            block = Block(design, number)
            blocks.append(block)
            record.say(f"block {number + 1}/{len(sequence)}: {DESIGNS[design]}")
            began = time.monotonic()
            block.install_s = install(running, design, old_overlay)
            names = {part: f"designs-{number}-{part}" for part in PARTS}
            block_start = time.time()
            with running.plane.client() as api:
                counted_from = api_load(running, api, names["load"], args.elections)
                block.starts = pod_starts(api, names["start"], args.pods)
                block.rollouts = rollout_runs(running, api, names["roll"], args.rollouts, place=bool(args.place))
                block.handovers = handovers(running, api, names["svc"], args.handovers, work / f"svc-{number}")
                time.sleep(max(0.0, counted_from + args.window - time.time()))
                window = (counted_from, time.time())
                delete_namespaces(running, [names[p] for p in ("load", "start", "roll", "svc")])
                block.watches = wide_rollout(running, api, names["wide"], args.replicas)
            delete_namespaces(running, [names["wide"]])
            block.load = api_accounting(audit_log, names, (block_start, time.time()), window, args.elections)
            record.say(f"  api: idle over {block.load['idle_s']:.0f} s: "
                       f"{block.load['idle_electors_per_election']:.2f} req/min per election by the electors, "
                       f"{block.load['idle_kube_elector_per_election']:.2f} by {KE} for them; per measurement "
                       f"electors {block.load['electors']}, {KE} {block.load['kube_elector']}; fixed per min "
                       f"{ {k: round(v, 1) for k, v in block.load['fixed_per_min'].items()} }")
            uninstall(running, design, old_overlay)
            record.say(f"  block {number + 1} done in {time.monotonic() - began:.0f} s")
    finally:
        running.stop()
    return blocks


# ------------------------------------------------------------------ the table


def rows(blocks: list[Block], args: Any) -> list[stats.Row]:
    by = {d: [b for b in blocks if b.design == d] for d in DESIGNS}

    def pair(of: Callable[[list[Block]], list[Optional[float]]]) -> dict[str, Any]:
        return {"values": of(by["0.2"]), "baseline": of(by["0.1"]), "baseline_name": "0.1"}

    def each(get: Callable[[Block], list[Optional[float]]]) -> Callable[[list[Block]], list[Optional[float]]]:
        return lambda bs: [v for b in bs for v in get(b)]

    def old_start(b: Block) -> list[rollouts.Rollout]:
        return [r for r in b.rollouts if r.leader_before_old]

    def dist(bs: list[Block]) -> str:
        counts = collections.Counter(r.changes for b in bs for r in old_start(b))
        return " ".join(f"{k}:{counts[k]}" for k in sorted(counts)) or "-"

    def gaps(b: Block) -> list[Optional[float]]:
        return [g for r in b.rollouts for g in r.gaps]

    def reach(b: Block) -> list[Optional[float]]:
        return [h.to_new_leader for h in b.handovers]

    def p95(get: Callable[[Block], list[Optional[float]]]) -> Callable[[list[Block]], list[Optional[float]]]:
        def of(bs: list[Block]) -> list[Optional[float]]:
            values = [v for b in bs for v in get(b) if v is not None]
            return [stats.percentile(values, 95)] if values else []
        return of

    def load(key: str) -> Callable[[list[Block]], list[Optional[float]]]:
        return lambda bs: [b.load.get(key) for b in bs]

    def phase(part: str) -> Callable[[list[Block]], list[Optional[float]]]:
        return lambda bs: [float(b.load["electors"].get(part, 0) + b.load["kube_elector"].get(part, 0))
                           for b in bs if b.load]

    def split(part: str) -> str:
        def of(design: str) -> str:
            return (f"electors {_f([float(b.load['electors'].get(part, 0)) for b in by[design] if b.load])}, "
                    f"{KE} {_f([float(b.load['kube_elector'].get(part, 0)) for b in by[design] if b.load])}")
        return f"0.2 {of('0.2')}; 0.1 {of('0.1')}"

    def fixed_split(design: str) -> str:
        kinds = sorted({k for b in by[design] if b.load for k in b.load["fixed_per_min"]})
        return ", ".join(f"{k} {_f([b.load['fixed_per_min'].get(k, 0.0) for b in by[design] if b.load])}"
                         for k in kinds) or "-"

    def added() -> Callable[[list[Block]], list[Optional[float]]]:
        return lambda bs: [float(b.watches["rollout_all"]["max"] - b.watches["idle_all"]["median"])
                           for b in bs if b.watches]

    def watch(key: str, stat: str = "max") -> Callable[[list[Block]], list[Optional[float]]]:
        return lambda bs: [float(b.watches[key][stat]) for b in bs if b.watches]

    def row(figure: str, unit: str, of: Callable[[list[Block]], list[Optional[float]]], **kw: Any) -> stats.Row:
        p = pair(of)
        return stats.row(figure, unit, p["values"], baseline=p["baseline"], baseline_name=p["baseline_name"], **kw)

    both_zero = lambda *_: all(r.overlaps == 0 for b in blocks for r in b.rollouts)  # noqa: E731
    idle = {d: [b.watches.get("idle_all", {}).get("median") for b in by[d] if b.watches] for d in DESIGNS}
    return [
        row("leader changes per rollout whose leader started on an old pod", "changes",
            each(lambda b: [float(r.changes) for r in old_start(b)]), target="exactly 1 in every such rollout",
            check=lambda *_: all(r.changes == 1 for b in by["0.2"] for r in old_start(b)),
            note=f"0.2 {dist(by['0.2'])}, 0.1 {dist(by['0.1'])}"),
        row("handover gap (release or expiry -> next holder)", "s", each(gaps),
            note=f"p95 0.2 {_f(p95(gaps)(by['0.2']))} s, 0.1 {_f(p95(gaps)(by['0.1']))} s"),
        row("time without a valid Lease holder per rollout", "s", each(lambda b: [r.leaderless for r in b.rollouts])),
        row("checker sweeps with two leaders, per rollout", "sweeps",
            each(lambda b: [float(r.overlaps) for r in b.rollouts]), target="0", check=both_zero),
        row("handover -> first answer from the new leader on the leader Service", "s", each(reach)),
        row("  the same, p95", "s", p95(reach)),
        row("requests per handover answered 503 or not at all (leader Service)", "requests",
            each(lambda b: [float(h.not_leader + h.unanswered) for h in b.handovers])),
        row("opted-in pod POST (admission included)", "ms", each(lambda b: [s["post_ms"] for s in b.starts])),
        row("pod CREATE -> Ready (opted-in pod)", "s", each(lambda b: [s["ready_s"] for s in b.starts])),
        row("pod CREATE -> it holds the Lease of its new election", "s",
            each(lambda b: [s["leads_s"] for s in b.starts])),
        row(f"API requests per idle election per minute, its electors ({args.elections} elections x 3)", "req/min",
            load("idle_electors_per_election")),
        row(f"API requests per idle election per minute, {KE}'s for it (0.2 controller, 0.1 webhook)", "req/min",
            load("idle_kube_elector_per_election")),
        row(f"API requests for {args.pods} new elections (pod starts), electors + {KE}", "requests", phase("start"),
            note=split("start")),
        row(f"API requests for {args.rollouts} rollouts with leader placements, electors + {KE}", "requests",
            phase("roll"), note=split("roll")),
        row(f"API requests for the leader Service: deploy + {args.handovers} handovers, electors + {KE}", "requests",
            phase("svc"), note=split("svc")),
        row(f"API requests for the {args.replicas}-replica Deployment: create + 1 rollout, electors + {KE}",
            "requests", phase("wide"), note=split("wide")),
        row(f"API requests per minute by {KE} not tied to an election", "req/min",
            lambda bs: [sum(b.load.get("fixed_per_min", {}).values()) for b in bs if b.load],
            note="0.2 " + fixed_split("0.2") + "; 0.1 " + fixed_split("0.1")),
        row(f"WATCHes open on the API server during a {args.replicas}-replica rollout (max)", "watches",
            watch("rollout_all"), note=f"idle cluster before it: 0.2 {_f(idle['0.2'])}, 0.1 {_f(idle['0.1'])}"),
        row("  added by the rollout's candidates (max - idle)", "watches", added(),
            target="fewer than 0.1 (no per-elector pod watch)",
            check=lambda ours, base: base is not None and ours < base),
        row("  of which on pods", "watches", watch("rollout_pods")),
        row("  of which on leases", "watches", watch("rollout_leases")),
    ]


def image_ids() -> dict[str, str]:
    """The images measured: name -> (id, created), as podman has them."""
    env = {"CONTAINERS_CONF": str(binaries.ROOT / "tools" / "containers.conf"), "PATH": "/usr/bin:/bin:/usr/sbin"}
    out = {}
    for image in (images.names().webhook, images.names().elector, f"localhost/kube-elector-webhook:{release.TAG_0_1}",
                  f"localhost/kube-elector:{release.TAG_0_1}"):
        done = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}} {{.Created}}", image],
                              capture_output=True, text=True, env=env, check=False)
        out[image] = done.stdout.strip()
    return out


def _f(values: list[Optional[float]]) -> str:
    kept = [v for v in values if v is not None]
    return stats.fmt_spread(stats.spread(kept)) if kept else "-"


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], blocks=2, rollouts=3, handovers=5, pods=5, elections=3,
                      window=120.0, replicas=30, place=1)
    if args.quick:
        args.rollouts, args.handovers, args.pods, args.window, args.replicas = 1, 2, 2, 30.0, 10
    blocks = run(args)
    table_rows = rows(blocks, args)
    for design in DESIGNS:
        mine = [b for b in blocks if b.design == design]
        record.say(f"{DESIGNS[design]}: install {_f([b.install_s for b in mine])} s; " + "; ".join(
            r.line() for b in mine for r in b.rollouts))
    record.report("designs", table_rows, columns=COLUMNS,
                  settings={"blocks": [b.design for b in blocks], "release_0_1": release.RELEASE_0_1,
                            "rollouts_per_block": args.rollouts, "placement": bool(args.place),
                            "handovers_per_block": args.handovers, "pod_starts_per_block": args.pods,
                            "api_load": {"elections": args.elections, "candidates": 3, "min_window_s": args.window,
                                         "timings": "15s/10s/2s"},
                            "rollout_timings": rollouts_bench.TIMINGS, "wide_replicas": args.replicas,
                            "wide_strategy": "maxSurge 25%, maxUnavailable 0", "images": image_ids()},
                  extra={"blocks": [{"design": b.design, "install_s": b.install_s, "load": b.load,
                                     "pod_starts": b.starts, "watches": b.watches,
                                     "rollouts": [dict(dataclasses.asdict(r), changes=r.changes,
                                                       leader_before_old=r.leader_before_old) for r in b.rollouts],
                                     "handovers": [h.__dict__ for h in b.handovers]} for b in blocks]})


if __name__ == "__main__":
    main()
