"""An election's objects and their ownership chain (0.2): how fast the kube-elector controller makes them
for a first candidate Pod, keeps the Role's owners current, and how fast all three go with the last Pod.

Per election the controller makes Role `kube-elector-lease-<election>` (owned by the election's Pods),
its RoleBinding and the Lease (both owned by the Role); docs/security.md. When the last Pod is gone the
controller deletes them, and without the controller the garbage collector does (Pods -> Role ->
RoleBinding + Lease). Each run, on the local control plane (unscheduled Pods: a DELETE removes the object
at once), with the controller running as a process with exactly its shipped rights
(localplane/kube_elector/controller.py):

- election A: its first candidate Pod created (Ready) and at once an elector for it (as the kubelet would
  start one; client-go's default timings): Pod CREATE -> Role, RoleBinding and Lease exist, and -> that
  elector holds the Lease (it waits for the Role: after a 403 it retries a retry period later, jittered);
  then two more Pods join, one at a time (-> a reference to it among the Role's owners, and the Role's
  writes per join), one leaves (-> its reference pruned), and the last leaves (-> all three gone);
- election B, the baseline: the same objects for one Pod, then the controller stopped and the Pod
  deleted: the garbage collector alone (-> all three gone).

(0.1 measured the Lease owned by every candidate Pod, written by the electors themselves; its figures
are in docs/elector.md, marked as measured with 0.1.)

    .venv/bin/python -m bench.elector_ownership [--quick] [--runs N]
"""
from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from bench import elections, kube, record, stats
from controller import rbac
from localplane.kube_elector import controller as controller_process
from localplane.kube_elector.election_objects import delete_pod, make_pods, owner_uids

NAMESPACE = "bench-ownership"
SERVICE_ACCOUNT = "app"
KINDS = {"role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
         "binding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
         "lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"}


class Watch(threading.Thread):
    """Every event of one object (by name) of one collection: (monotonic receipt time, type, object)."""

    def __init__(self, plane: Any, collection: str, name: str) -> None:
        super().__init__(daemon=True)
        self.plane, self.collection, self.name = plane, collection, name
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self._client: Any = None

    def run(self) -> None:
        params = {"watch": "true", "fieldSelector": f"metadata.name={self.name}", "timeoutSeconds": "600"}
        self._client = self.plane.client(timeout=None)
        try:
            with self._client.stream("GET", self.collection, params=params) as stream:
                self.ready.set()
                for line in stream.iter_lines():
                    event = json.loads(line)
                    self.events.append((time.monotonic(), event["type"], event["object"]))
        except Exception:  # noqa: BLE001 - closed by stop()
            pass

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()

    def first(self, kind: str, after: float = 0.0, when: Any = lambda obj: True) -> Optional[float]:
        return next((t for t, k, obj in list(self.events) if k == kind and t >= after and when(obj)), None)

    def count(self, kind: str, after: float, before: float) -> int:
        return sum(1 for t, k, _ in list(self.events) if k == kind and after <= t < before)


def watches(plane: Any, election: str) -> dict[str, Watch]:
    names = {"role": rbac.role_name(election), "binding": rbac.role_name(election), "lease": election}
    out = {kind: Watch(plane, KINDS[kind].format(ns=NAMESPACE), names[kind]) for kind in KINDS}
    for watch in out.values():
        watch.start()
        watch.ready.wait(5)
    return out


def all_seen(ws: dict[str, Watch], kind: str, after: float, timeout: float) -> Optional[float]:
    """When the last of the three objects showed an event `kind` after `after`; None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        times = [w.first(kind, after) for w in ws.values()]
        if all(t is not None for t in times):
            return max(times)  # type: ignore[type-var]
        time.sleep(0.01)
    return None


def one_run(plane: Any, api: Any, kubeconfig: Path, work: Path, number: int,
            ctl: list[controller_process.ControllerProcess]) -> dict[str, Any]:
    election, baseline = f"own-{number}", f"gc-{number}"
    names = [f"{election}-{n}" for n in range(3)]
    ws = watches(plane, election)
    electors: list[elections.Elector] = []
    out: dict[str, Any] = {}
    try:
        # the first candidate: the controller makes the election's objects; its elector waits for them
        created = time.monotonic()
        uids = make_pods(api, NAMESPACE, names[:1], election=election, ready=True)
        first = elections.Elector(pod=names[0], namespace=NAMESPACE, election=election, kubeconfig=kubeconfig,
                                  log_dir=work, extra=elections.DEFAULT_TIMINGS, env={"POD_UID": uids[names[0]]})
        first.start()
        electors.append(first)
        made = all_seen(ws, "ADDED", created, 30)
        out["made_ms"] = None if made is None else (made - created) * 1000
        elections.wait_for(first.is_leader, 30)
        out["leads_s"] = time.monotonic() - created
        # joins, one at a time
        joins, writes = [], []
        for name in names[1:]:
            time.sleep(1.0)
            since = time.monotonic()
            uids.update(make_pods(api, NAMESPACE, [name], election=election, ready=True))
            uid = uids[name]
            added = ws["role"].first("MODIFIED", since, lambda obj, u=uid: u in owner_uids(obj))
            deadline = time.monotonic() + 10
            while added is None and time.monotonic() < deadline:
                time.sleep(0.01)
                added = ws["role"].first("MODIFIED", since, lambda obj, u=uid: u in owner_uids(obj))
            joins.append(None if added is None else (added - since) * 1000)
            time.sleep(1.0)
            writes.append(ws["role"].count("MODIFIED", since, time.monotonic()))
        out["join_ms"], out["join_role_writes"] = joins, writes
        # one leaves (not the leader's pod)
        gone_uid = uids[names[2]]
        since = delete_pod(api, NAMESPACE, names[2])
        pruned = None
        deadline = time.monotonic() + 10
        while pruned is None and time.monotonic() < deadline:
            pruned = ws["role"].first("MODIFIED", since, lambda obj: gone_uid not in owner_uids(obj))
            time.sleep(0.01)
        out["prune_ms"] = None if pruned is None else (pruned - since) * 1000
        # the last leave: the electors stop (SIGTERM, as the kubelet does), then the Pod objects go
        first.signal(signal.SIGTERM)
        first.proc.wait(10)
        delete_pod(api, NAMESPACE, names[1])
        time.sleep(0.5)
        deleted = delete_pod(api, NAMESPACE, names[0])
        gone = all_seen(ws, "DELETED", deleted, 30)
        out["gone_ms"] = None if gone is None else (gone - deleted) * 1000
    finally:
        for proc in electors:
            proc.stop()
        for watch in ws.values():
            watch.stop()
    # the baseline: the controller's objects for one Pod, the controller stopped, the Pod deleted
    ws = watches(plane, baseline)
    try:
        make_pods(api, NAMESPACE, [f"{baseline}-0"], election=baseline, ready=True)
        if all_seen(ws, "ADDED", 0.0, 30) is None:
            raise RuntimeError(f"the controller did not make {baseline}'s objects:\n{ctl[-1].log_tail()}")
        time.sleep(0.5)
        ctl[-1].stop()
        deleted = delete_pod(api, NAMESPACE, f"{baseline}-0")
        gone = all_seen(ws, "DELETED", deleted, 60)
        out["gc_gone_ms"] = None if gone is None else (gone - deleted) * 1000
    finally:
        for watch in ws.values():
            watch.stop()
        ctl.append(controller_process.start_controller(plane, work / "controller", identity=f"ctl-{number + 1}"))
    return out


def main() -> None:
    args = record.cli(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="bench-ownership-"))
    plane = kube.start_plane(work / "plane")
    runs: list[dict[str, Any]] = []
    ctl: list[controller_process.ControllerProcess] = []
    try:
        ctl.append(controller_process.start_controller(plane, work / "controller", identity="ctl-0"))
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            # the electors' account: no rights of its own; the controller makes them per election
            kubeconfig = elections.grant(plane, api, NAMESPACE, SERVICE_ACCOUNT, work / "sa.kubeconfig")
            for number in range(args.runs):
                runs.append(one_run(plane, api, kubeconfig, work, number, ctl))
                record.say(f"run {number + 1}/{args.runs}: {runs[-1]}")
    finally:
        for process in ctl:
            process.stop()
        plane.stop()

    def col(key: str) -> list[Optional[float]]:
        return [run[key] for run in runs]

    def flat(key: str) -> list[Optional[float]]:
        return [value for run in runs for value in run[key]]

    rows = [
        stats.row("first Pod CREATE -> Role, RoleBinding and Lease made (controller)", "ms", col("made_ms")),
        stats.row("first Pod CREATE -> its elector holds the Lease", "s", col("leads_s"),
                   note="the elector retries a retry period (2 s, jittered) after its 403"),
        stats.row("Pod CREATE -> its reference among the Role's owners (a join)", "ms", flat("join_ms")),
        stats.row("Role writes per join (the controller's; the electors write none)", "writes",
                   flat("join_role_writes"), target="1",
                   check=lambda v, _: v <= 1),
        stats.row("Pod DELETE -> its reference pruned from the Role", "ms", col("prune_ms")),
        stats.row("last Pod DELETE -> Role, RoleBinding and Lease gone", "ms", col("gone_ms"),
                   baseline=col("gc_gone_ms"), baseline_name="controller stopped: garbage collector alone",
                   target="< 1000 ms", check=lambda v, _: v < 1000),
    ]
    record.report("elector_ownership", rows,
                  settings={"runs": args.runs, "timings": elections.DEFAULT_TIMINGS, "design": "0.2 (controller)"},
                  extra={"runs": runs})


if __name__ == "__main__":
    main()
