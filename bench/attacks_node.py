"""Issue 23's webhook attacks on the node: `python -m bench.attacks_node`.

kube-elector installed from manifests/ on the local cluster (two webhook pods, their memory limit, their
probes); from the host, ATTACK_CONNECTIONS (2200) connections to *each* webhook pod, half slow request
heads (one byte every 5 s) and half stalled TLS handshakes, all reconnecting when closed; meanwhile 30
opted-in pods are created (dry run: the API server calls the webhook through its Service all the same).
Figures: pods refused, the webhook containers' memory (PSS summed over their processes; idle, peak),
restarts. Stays out of CI (minutes).
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

from bench import attacks, procs, record
from localplane import cluster
from localplane.node import pods

MIB = 1024 * 1024
SELECTOR = "app.kubernetes.io/name=kube-elector-webhook"


def webhook_memory(api) -> tuple[int, int]:
    """(the webhook containers' memory, their restarts), over both pods. Memory is the sum of PSS over every
    process (supervisor and forked workers): a sum of RSS would count the pages they share once per process."""
    found = api.get(f"/api/v1/namespaces/{cluster.NAMESPACE}/pods", params={"labelSelector": SELECTOR}).json()["items"]
    pss = sum(procs.pss_bytes(pid) for pod in found for pid in pods.container_pids(pod).get("webhook", []))
    restarts = sum(s.get("restartCount", 0) for pod in found for s in pod["status"].get("containerStatuses", []))
    return pss, restarts


def main() -> None:
    count = int(os.environ.get("ATTACK_CONNECTIONS", "2200"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as work, cluster.Cluster.start(Path(work) / "cluster") as running:
        running.install_kube_elector()
        api = running.plane.client()
        api.post("/api/v1/namespaces", json={"metadata": {"name": "attack"}}).raise_for_status()
        webhooks = api.get(f"/api/v1/namespaces/{cluster.NAMESPACE}/pods", params={"labelSelector": SELECTOR}).json()
        targets = [(p["status"]["podIP"], 10250) for p in webhooks["items"]]
        time.sleep(3)
        idle, restarts_before = webhook_memory(api)
        stop, counts = asyncio.Event(), {"opened": 0, "closed": 0}
        loop = asyncio.new_event_loop()

        async def attack() -> None:
            await asyncio.gather(*(kind(port, count // 2, stop, counts, host)
                                   for host, port in targets for kind in (attacks.slow_tls, attacks.stalled_handshakes)))

        thread = threading.Thread(target=lambda: loop.run_until_complete(attack()))
        thread.start()
        time.sleep(15)
        refused, created, peak = [], 0, idle
        for i in range(30):
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"p{i}", "annotations": {"elector.dev/inject": "true"}},
                   "spec": {"containers": [{"name": "app", "image": "a"}]}}
            reply = api.post("/api/v1/namespaces/attack/pods", params={"dryRun": "All"}, json=pod)
            created += reply.status_code == 201
            if reply.status_code != 201:
                refused.append(reply.text[:200])
            peak = max(peak, webhook_memory(api)[0])
            time.sleep(0.5)
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        _, restarts_after = webhook_memory(api)
        figures = {"connections per webhook pod": count, "webhook pods": len(targets), "opened": counts["opened"],
                   "pods created": created, "pods refused": len(refused),
                   "first refusal": refused[0] if refused else "", "webhook restarts": restarts_after - restarts_before,
                   "webhook PSS idle MiB (both pods)": round(idle / MIB, 1),
                   "webhook PSS peak MiB (both pods)": round(peak / MIB, 1)}
        print("webhook on the node:", figures, flush=True)
        record.RESULTS.mkdir(parents=True, exist_ok=True)
        (record.RESULTS / "attacks_node.json").write_text(
            json.dumps({"name": "attacks_node", "machine": record.machine(), "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
