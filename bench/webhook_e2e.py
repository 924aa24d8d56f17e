"""2. Pod CREATE latency through the real kube-apiserver, with the webhook vs without it (same run).

The webhook is installed from manifests/ as the acceptance tests do (localplane.kube_elector.webhook:
shipped ConfigMap, self-managed certificate; since 0.2 the webhook writes nothing, admission only returns
a patch). Each run creates pods one after another as the admin, in three phases taken in turn:
  webhook        the MutatingWebhookConfiguration present, pods opted in (the webhook is called)
  not opted in   the configuration present, pods without the annotation (matchConditions skip the call)
  no webhook     the configuration deleted (the baseline), pods opted in
  as injected    the configuration deleted, the pod posted as the webhook would have made it (its dry run's
                 answer): splits the time added into the webhook call and the bigger pod's own cost
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import kube, record, stats
from localplane.kube_elector import webhook as webhook_install

NAMESPACE = "bench-e2e"
MWC = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{webhook_install.CONFIGURATION}"
WARMUP = 5


def pod(opted_in: bool) -> dict[str, Any]:
    annotations = {"elector.dev/inject": "true"} if opted_in else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "bench-", "labels": {"app": "bench"}, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "app:1", "env": [{"name": "MODE", "value": "prod"}]}]}}


def injected(api: Any) -> bool:
    """Does a dry-run CREATE of an opted-in pod come back with the elector? (the API server's view)"""
    answer = api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"dryRun": "All"}, json=pod(True)).json()
    spec = answer.get("spec") or {}
    return any(c.get("name") == "elector" for c in [*spec.get("initContainers", []), *spec.get("containers", [])])


def set_webhook(api: Any, saved: dict[str, Any], present: bool) -> None:
    exists = api.get(MWC).status_code == 200
    if present and not exists:
        body = {**saved, "metadata": {k: v for k, v in saved["metadata"].items()
                                      if k in ("name", "labels", "annotations")}}
        api.post(MWC.rsplit("/", 1)[0], json=body).raise_for_status()
    elif not present and exists:
        api.delete(MWC).raise_for_status()
    deadline = time.monotonic() + 30
    while injected(api) != present:  # the API server's informer has caught up
        if time.monotonic() > deadline:
            raise RuntimeError(f"webhook configuration present={present} not in effect after 30 s")
        time.sleep(0.1)


def as_injected(api: Any) -> dict[str, Any]:
    """An opted-in pod as the webhook makes it (the API server's dry-run answer), ready to post again."""
    answer = api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", params={"dryRun": "All"}, json=pod(True)).json()
    meta = answer["metadata"]
    return {"apiVersion": "v1", "kind": "Pod", "spec": answer["spec"],
            "metadata": {"generateName": meta["generateName"], "labels": meta.get("labels", {}),
                         "annotations": meta.get("annotations", {})}}


def create_pods(api: Any, body: dict[str, Any], count: int) -> list[float]:
    latencies = []
    for i in range(WARMUP + count):
        started = time.perf_counter()
        api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=body).raise_for_status()
        if i >= WARMUP:
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], pods=100)
    count = 30 if args.quick else args.pods
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    plane = kube.start_plane(work / "plane")
    hook = None
    phases = {"webhook": (True, True), "not opted in": (True, False), "no webhook": (False, True),
              "as injected": (False, None)}
    runs: dict[str, list[list[float]]] = {name: [] for name in phases}
    try:
        hook = webhook_install.install(plane, work / "webhook")
        with plane.client() as api:
            kube.make_namespace(api, NAMESPACE)
            set_webhook(api, {}, True)
            saved = api.get(MWC).raise_for_status().json()
            made = as_injected(api)
            for run in range(args.runs):
                for name, (present, opted_in) in phases.items():
                    set_webhook(api, saved, present)
                    runs[name].append(create_pods(api, made if opted_in is None else pod(opted_in), count))
                record.say(f"run {run + 1}/{args.runs} done")
            set_webhook(api, saved, True)
            api.delete(f"/api/v1/namespaces/{NAMESPACE}")
    finally:
        if hook is not None:
            hook.stop()
        plane.stop()

    def per_run(name: str, fn: Any) -> list[float]:
        return [fn(latencies) for latencies in runs[name]]

    p99 = lambda values: stats.percentile(values, 99)  # noqa: E731
    base = dict(baseline_name="no webhook")
    added = [statistics.median(w) - statistics.median(n) for w, n in zip(runs["webhook"], runs["no webhook"])]
    rows = [
        stats.row("pod CREATE median, opted in", "ms", per_run("webhook", statistics.median),
                   baseline=per_run("no webhook", statistics.median), **base),
        stats.row("pod CREATE p99, opted in", "ms", per_run("webhook", p99), baseline=per_run("no webhook", p99), **base),
        stats.row("added by the webhook at the median", "ms", added, target="≤ 2 ms (issue 24)", check=lambda v, b: v <= 2.0),
        stats.row("  of which the webhook call (opted in - the same pod posted as injected, no webhook)", "ms",
                   [statistics.median(w) - statistics.median(i) for w, i in zip(runs["webhook"], runs["as injected"])]),
        stats.row("  of which the injected pod's own cost (posted as injected - the pod as written)", "ms",
                   [statistics.median(i) - statistics.median(n) for i, n in zip(runs["as injected"], runs["no webhook"])]),
        stats.row("pod CREATE median, not opted in", "ms", per_run("not opted in", statistics.median),
                   baseline=per_run("no webhook", statistics.median), **base),
        stats.row("pod CREATE p99, not opted in", "ms", per_run("not opted in", p99),
                   baseline=per_run("no webhook", p99), **base),
    ]
    record.report("webhook_e2e", rows, settings={"runs": args.runs, "pods_per_phase": count, "warmup": WARMUP,
                                                 "client": "httpx, keep-alive, admin (system:masters)"})


if __name__ == "__main__":
    main()
