"""Rolling updates of the sample app, measured: who led before and after, how often the Lease changed
hands, how long it had no valid holder, and whether two pods ever said `is_leader` at once.

Test and benchmark equipment for rollout-aware leadership (issue 13): tests/node/test_rollouts.py and
bench/rollouts.py. The sample app (examples/leader-app: its pod template and leader.py, on the local
image) runs as a Deployment (maxSurge 1, maxUnavailable 0: a new pod is Ready before an old one goes)
or as a StatefulSet (OrderedReady: the highest ordinal is deleted first, before its replacement exists).

Times are local monotonic receipt times of the Lease watch's events (demo/leasetimeline.py): what a
client watching the Lease sees, the same clock for every event.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import yaml

from demo import observe
from demo.checker import LeaderChecker
from demo.leasetimeline import LeaseEvent, LeaseTimeline, leaderless_gaps, new_holders
from localplane.node import images
from localplane.process import binaries
from localplane import cluster as cluster_

__all__ = ["Workload", "Rollout", "deployment", "statefulset", "headless_service", "app_configmap", "deploy",
           "trigger", "roll", "measure", "ROLLOUT_AWARE", "RESTARTED_AT"]

SAMPLE = binaries.ROOT / "examples" / "leader-app"
ROLLOUT_AWARE = "elector.dev/rollout-aware"  # pod annotation: "false" turns the feature off
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` stamps on the template
REVISION_LABELS = {"Deployment": "pod-template-hash", "StatefulSet": "controller-revision-hash"}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One sample app: its kind ("Deployment" or "StatefulSet") and name (= `app` label = Lease name)."""

    kind: str
    namespace: str
    name: str = "leader-app"
    replicas: int = 3

    @property
    def path(self) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/{self.kind.lower()}s/{self.name}"

    @property
    def selector(self) -> str:
        return f"app={self.name}"

    @property
    def revision_label(self) -> str:
        return REVISION_LABELS[self.kind]


# ------------------------------------------------------------------ manifests


def _aware(rollout_aware: bool | None) -> dict[str, str]:
    """The annotation for a setting: only "false" is written; on is the default, so True = absent."""
    return {ROLLOUT_AWARE: "false"} if rollout_aware is False else {}


def pod_template(name: str, *, rollout_aware: bool | None = None,
                 annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The shipped sample app's pod template (examples/leader-app/deployment.yaml, restricted security
    context and all) on the local image, labelled `app: <name>`, its code from ConfigMap `<name>`;
    `annotations` added (e.g. the elector's timings)."""
    template = yaml.safe_load((SAMPLE / "deployment.yaml").read_text())["spec"]["template"]
    template["metadata"] = {"labels": {"app": name}, "annotations": {
        "elector.dev/inject": "true", **_aware(rollout_aware), **(annotations or {})}}
    for container in template["spec"]["containers"]:
        container.update(image=images.names().python, imagePullPolicy="Never")
    template["spec"]["volumes"] = [{"name": "app", "configMap": {"name": name}}]
    return template


def deployment(name: str = "leader-app", *, replicas: int = 3, rollout_aware: bool | None = None,
               annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """maxSurge 1, maxUnavailable 0: each old pod goes only once a new one is Ready."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": pod_template(name, rollout_aware=rollout_aware, annotations=annotations)}}


def statefulset(name: str = "leader-app", *, replicas: int = 3, rollout_aware: bool | None = None,
                annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """RollingUpdate, OrderedReady: ordinals replaced from the highest down, each deleted before it is re-made."""
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"},
                     "template": pod_template(name, rollout_aware=rollout_aware, annotations=annotations)}}


def headless_service(name: str = "leader-app") -> dict[str, Any]:
    """The StatefulSet's governing Service."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "http", "port": 8080}]}}


def app_configmap(name: str = "leader-app") -> dict[str, Any]:
    """examples/leader-app/leader.py, as the shipped kustomization's configMapGenerator makes it."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"leader.py": (SAMPLE / "leader.py").read_text()}}


# ------------------------------------------------------------------ acting on the cluster


def deploy(api: httpx.Client, kind: str, namespace: str, *, name: str = "leader-app", replicas: int = 3,
           rollout_aware: bool | None = None, annotations: Mapping[str, str] | None = None) -> Workload:
    """Create the app (ConfigMap, for a StatefulSet its Service, the workload); wait for one agreed leader.
    `annotations`: added to the pod template (e.g. the elector's timings)."""
    workload = Workload(kind, namespace, name, replicas)
    build = {"Deployment": deployment, "StatefulSet": statefulset}[kind]
    objects = [("/api/v1", "configmaps", app_configmap(name))]
    if kind == "StatefulSet":
        objects.append(("/api/v1", "services", headless_service(name)))
    manifest = build(name, replicas=replicas, rollout_aware=rollout_aware, annotations=annotations)
    objects.append(("/apis/apps/v1", f"{kind.lower()}s", manifest))
    for group, resource, body in objects:
        api.post(f"{group}/namespaces/{namespace}/{resource}", json=body).raise_for_status()
    observe.wait_agreed_leader(api, namespace, count=replicas, selector=workload.selector, timeout=180)
    return workload


def trigger(api: httpx.Client, workload: Workload, *, rollout_aware: bool | None = None,
            switch: bool = False) -> None:
    """Start a rollout: a new restart stamp on the pod template; with `switch`, also set the setting
    (False writes "false", True removes the annotation: on is the default)."""
    notes: dict[str, str | None] = {RESTARTED_AT: f"{time.time():.6f}"}
    if switch:
        notes[ROLLOUT_AWARE] = "false" if rollout_aware is False else None
    api.patch(workload.path, json={"spec": {"template": {"metadata": {"annotations": notes}}}},
              headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()


def wait_complete(the_cluster: cluster_.Cluster, workload: Workload, *, timeout: float = 300) -> None:
    """`kubectl rollout status` until it says complete; run again after an error (the API server restarting)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        done = the_cluster.kubectl("rollout", "status", f"{workload.kind.lower()}/{workload.name}",
                                   "-n", workload.namespace, f"--timeout={max(1, int(left))}s",
                                   check=False, timeout=left + 15)
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{workload.kind} {workload.namespace}/{workload.name}: rollout not complete in {timeout:.0f} s")


def _pods(api: httpx.Client, workload: Workload) -> list[dict[str, Any]] | None:
    try:
        return observe.list_pods(api, workload.namespace, workload.selector)
    except httpx.HTTPError:
        return None  # the API server restarting: ask again


def wait_one_revision(api: httpx.Client, workload: Workload, *, timeout: float = 120) -> str:
    """Until every pod, terminating ones too, is of one revision (the old ones gone); that revision."""
    def one() -> str | None:
        revisions = {p["metadata"]["labels"].get(workload.revision_label) for p in _pods(api, workload) or []}
        return revisions.pop() if len(revisions) == 1 else None

    return observe.wait_for(one, timeout=timeout, interval=0.1, message=f"{workload.name}: only one revision left")


def roll(the_cluster: cluster_.Cluster, api: httpx.Client, workload: Workload, *, rollout_aware: bool | None = None,
         switch: bool = False, midway: Callable[[], None] | None = None, timeout: float = 300) -> str:
    """One rollout, start to finish (old pods gone); the new revision. `midway` runs right after the trigger."""
    trigger(api, workload, rollout_aware=rollout_aware, switch=switch)
    if midway is not None:
        midway()
    wait_complete(the_cluster, workload, timeout=timeout)
    return wait_one_revision(api, workload)


# ------------------------------------------------------------------ measuring one rollout


@dataclasses.dataclass(frozen=True)
class Rollout:
    """One measured rollout, from its trigger until it was complete and settled."""

    kind: str
    leader_before: str
    revision_before: str  # of the leader's pod at the trigger
    revision_after: str  # of every pod once the rollout was done
    holders: list[str]  # each new holder of the Lease in turn (a holder differing from the one before)
    gaps: list[float]  # each interval without a valid holder (released, or expired), seconds
    successors: list[str]  # elector.dev/successor on each release that named one
    overlaps: int  # checker sweeps in which two pods said is_leader
    sweeps: int
    checker_errors: int
    final_leader: str
    final_revision: str
    final_deleting: bool
    took: float  # trigger -> `kubectl rollout status` complete, seconds
    start: str = ""  # where the leader was placed before the trigger, if it was ("youngest", ...)

    @property
    def leader_before_old(self) -> bool:
        return self.revision_before != self.revision_after

    @property
    def changes(self) -> int:
        return len(self.holders)

    @property
    def leaderless(self) -> float:
        return sum(self.gaps)

    @property
    def longest_gap(self) -> float:
        return max(self.gaps, default=0.0)

    @property
    def final_new(self) -> bool:
        return bool(self.final_leader) and self.final_revision == self.revision_after

    def line(self) -> str:
        return (f"{self.kind} rollout in {self.took:.1f} s: leader {self.leader_before} "
                f"{f'(placed on the {self.start} pod) ' if self.start else ''}"
                f"({'old' if self.leader_before_old else 'new'}) -> {self.final_leader or '-'} "
                f"({'new' if self.final_new else 'NOT new'}{', deleting' if self.final_deleting else ''}); "
                f"{self.changes} change(s) [{' -> '.join(self.holders)}]; leaderless {self.leaderless:.3f} s "
                f"({len(self.gaps)} gap(s), longest {self.longest_gap:.3f} s); {self.overlaps} overlaps in "
                f"{self.sweeps} sweeps; successor named: {', '.join(self.successors) or 'never'}")


def _revision_of(api: httpx.Client, workload: Workload, name: str) -> tuple[str, bool]:
    """(revision, being deleted) of the pod `name`; ("", False) when it is gone."""
    reply = api.get(f"/api/v1/namespaces/{workload.namespace}/pods/{name}") if name else None
    if reply is None or reply.status_code != 200:
        return "", False
    meta = reply.json()["metadata"]
    return str(meta.get("labels", {}).get(workload.revision_label, "")), bool(meta.get("deletionTimestamp"))


def _leader_settled(api: httpx.Client, workload: Workload, timeline: LeaseTimeline, revision: str) -> bool:
    try:
        return _revision_of(api, workload, timeline.holder) == (revision, False)
    except httpx.HTTPError:
        return False


def measure(the_cluster: cluster_.Cluster, workload: Workload, *, rollout_aware: bool | None = None,
            switch: bool = False, midway: Callable[[], None] | None = None,
            on_event: Callable[[LeaseEvent], None] | None = None, settle: float = 2.0, recover: float = 30.0,
            timeout: float = 300) -> Rollout:
    """Trigger a rollout and measure it: a Lease watch for holder changes and gaps, a LeaderChecker on
    every pod for overlaps. The window ends `settle` s after the old pods are gone and the Lease is held
    by a live pod of the new revision (waited for at most `recover` s: after a fault it may take a
    lease duration). `on_event` sees every Lease event as it arrives (keep it short: start a thread)."""
    with the_cluster.plane.client() as api, LeaseTimeline(the_cluster.plane.client, workload.namespace,
                                                          workload.name, on_event=on_event) as timeline:
        leader_before = timeline.holder
        revision_before, _ = _revision_of(api, workload, leader_before)
        with LeaderChecker(the_cluster.plane.client, workload.namespace, workload.selector) as checker:
            start = time.monotonic()
            revision = roll(the_cluster, api, workload, rollout_aware=rollout_aware, switch=switch, midway=midway,
                            timeout=timeout)
            took = time.monotonic() - start
            try:
                observe.wait_for(lambda: _leader_settled(api, workload, timeline, revision), timeout=recover)
            except TimeoutError:
                pass  # reported: final_new is False
            time.sleep(settle)
            end = time.monotonic()
        final_leader = timeline.holder
        final_revision, final_deleting = _revision_of(api, workload, final_leader)
        events = timeline.between(start, end)
    return Rollout(
        kind=workload.kind, leader_before=leader_before, revision_before=revision_before, revision_after=revision,
        holders=new_holders(timeline.events, start, end), gaps=leaderless_gaps(timeline.events, start, end),
        successors=[e.successor for e in events if not e.holder and e.successor],
        overlaps=len(checker.overlaps), sweeps=checker.sweeps, checker_errors=len(checker.errors),
        final_leader=final_leader, final_revision=final_revision, final_deleting=final_deleting, took=took)
