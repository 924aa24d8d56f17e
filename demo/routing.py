"""Traffic to a leader-only Service, as a client pod sees it: the node tests' and the benchmark's probe.

A client pod (not opted in) GETs the Service's ClusterIP every 10 ms and prints one JSON line per
request: when it was sent, the HTTP status, and which pod answered and whether that pod was the
leader at that moment (the sample app answers 200 only on the leader, 503 elsewhere). `analyse`
turns those lines and the moments of leadership changes into per-handover figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from pathlib import Path
from typing import Any

from localplane.node import images, pods
from localplane.process import binaries

__all__ = ["client_pod", "Answer", "parse", "Handover", "analyse", "handovers", "served_by_others", "summary", "overlay",
           "holder", "signal_elector", "EXAMPLES"]

CLIENT = """
import json, sys, time, urllib.error, urllib.request
url = sys.argv[1]
while True:
    sent = time.time()
    try:
        with urllib.request.urlopen(url, timeout=0.5) as reply:
            code, body = reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read()
    except Exception as exc:
        code, body = 0, type(exc).__name__.encode()
    print(json.dumps({"t": sent, "code": code, "body": body.decode(errors="replace")}), flush=True)
    time.sleep(0.01)
"""


def client_pod(name: str, url: str) -> dict[str, Any]:
    """A pod that is not opted in, requesting `url` every 10 ms (restricted-profile compliant)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "client", "image": images.names().python, "imagePullPolicy": "Never",
                "command": ["python3", "-c", CLIENT, url],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }


@dataclasses.dataclass(frozen=True)
class Answer:
    sent: float  # wall clock, seconds
    code: int  # 0: no HTTP answer (refused, timed out)
    pod: str  # who answered ("" if nobody)
    is_leader: bool


def parse(log: str) -> list[Answer]:
    answers = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
            body = json.loads(entry["body"]) if entry["code"] else {}
        except (ValueError, KeyError, TypeError):
            continue
        answers.append(Answer(entry["t"], entry["code"], body.get("pod", ""), bool(body.get("is_leader"))))
    return answers


@dataclasses.dataclass(frozen=True)
class Handover:
    what: str
    at: float  # wall clock when leadership changed (the new holder appeared on the Lease)
    old: str
    new: str
    to_new_leader: float | None  # seconds from `at` to the first 200 from the new leader
    not_leader: int  # requests from the fault on, until then, answered 503 by a pod that was not the leader
    unanswered: int  # requests from the fault on, until then, that got no HTTP answer


def analyse(answers: list[Answer], *, what: str, fault: float, at: float, old: str, new: str,
            until: float) -> Handover:
    """Figures for one handover: the fault injected at `fault`, the new holder on the Lease at `at`."""
    first = next((a.sent for a in answers if at <= a.sent < until and a.code == 200 and a.pod == new), None)
    end = first if first is not None else until
    between = [a for a in answers if fault <= a.sent < end]
    return Handover(what, at, old, new, None if first is None else first - at,
                    sum(1 for a in between if a.code == 503), sum(1 for a in between if a.code == 0))


def handovers(answers: list[Answer], faults: list[tuple[str, float, str]], holders: list[tuple[float, str]],
              end: float) -> tuple[list[Handover], list[str]]:
    """Each handover that followed each fault: `faults` are (what, wall time, holder then), `holders` the
    Lease's (wall time, holder) changes. Also the faults after which the old leader kept the lead."""
    found, kept = [], []
    for i, (what, at_fault, old) in enumerate(faults):
        until = faults[i + 1][1] if i + 1 < len(faults) else end
        holder = old
        for wall, who in holders:
            if wall < at_fault:
                continue
            if wall >= until:
                break
            if who and who != holder:
                found.append(analyse(answers, what=what, fault=at_fault, at=wall, old=holder, new=who, until=until))
                holder = who
        if holder == old:
            kept.append(f"{what}: {old} kept the lead")
    return found, kept


def served_by_others(answers: list[Answer], holders: list[tuple[float, str]], *,
                     tolerance: float = 0.5) -> list[Answer]:
    """The 200 answers from a pod that did not hold the Lease at that moment (give or take `tolerance`
    s: the Lease's times are when this host saw the change). `holders`: (wall time, holder) changes."""
    def held(pod: str, at: float) -> bool:
        for i, (since, who) in enumerate(holders):
            until = holders[i + 1][0] if i + 1 < len(holders) else float("inf")
            if who == pod and since - tolerance <= at < until + tolerance:
                return True
        return False

    return [a for a in answers if a.code == 200 and not held(a.pod, a.sent)]


def summary(handovers: list[Handover]) -> dict[str, Any]:
    times = sorted(h.to_new_leader for h in handovers if h.to_new_leader is not None)
    return {
        "handovers": len(handovers),
        "reached": len(times),
        "median_s": statistics.median(times) if times else None,
        "p95_s": times[min(len(times) - 1, int(0.95 * len(times)))] if times else None,
        "not_leader_answers": sum(h.not_leader for h in handovers),
        "unanswered": sum(h.unanswered for h in handovers),
    }


EXAMPLES = binaries.ROOT / "examples"
# Short timings, so that a killed elector's Lease expires within the test.
TIMINGS = {"elector.dev/lease-duration": "4s", "elector.dev/renew-deadline": "3s", "elector.dev/retry-period": "1s"}


def overlay(tmp_path: Path, example: str, *, spread_over_nodes: bool = False, replicas: int | None = None) -> str:
    """The example as shipped, on the local Python image, with short timings; spread_over_nodes: its pods
    on every node (a topology spread constraint on the hostname; a cordoned node does not count); replicas:
    the count it starts with (set here, not scaled after, so that no pod of the shipped count is terminating
    when the test starts)."""
    patches = "\n".join(f"      - op: add\n        path: /spec/template/metadata/annotations/{k.replace('/', '~1')}\n"
                        f"        value: \"{v}\"" for k, v in TIMINGS.items())
    if replicas is not None:
        patches += f"\n      - op: replace\n        path: /spec/replicas\n        value: {replicas}"
    if spread_over_nodes:
        patches += ("\n      - op: add\n        path: /spec/template/spec/topologySpreadConstraints\n"
                    "        value: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,"
                    " nodeTaintsPolicy: Honor, labelSelector: {matchLabels: {app: leader-app}}}]")
    python = images.names().python
    (tmp_path / "kustomization.yaml").write_text(f"""\
resources:
  - {os.path.relpath(EXAMPLES / example, tmp_path)}
images:
  - {{name: python, newName: {python.rsplit(':', 1)[0]}, newTag: {python.rsplit(':', 1)[1]}}}
patches:
  - target: {{kind: Deployment, name: leader-app}}
    patch: |
{patches}
""")
    return str(tmp_path)


def holder(api: Any, namespace: str) -> str:
    """The sample app's Lease holder now ("" if none)."""
    lease = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/leader-app").json()
    return lease.get("spec", {}).get("holderIdentity") or ""


def signal_elector(api: Any, namespace: str, pod_name: str, signum: int) -> None:
    """Signal the elector's processes inside the pod, as a crash or the kubelet would."""
    for pid in pods.container_pids(api.get(f"/api/v1/namespaces/{namespace}/pods/{pod_name}").json())["elector"]:
        os.kill(pid, signum)
