"""Our webhook beside HashiCorp's Vault agent injector (vault-k8s, Go) on the same load, interleaved.

Why: webhook_load.py's targets are ratios to a server that does no work, which no Python handler that parses
an AdmissionReview can approach. A production injector written in Go that does the same job (decode a Pod,
add containers and volumes, answer a JSONPatch) says what this kind of webhook costs elsewhere. Out of CI and
of `make bench`: it needs a vault-k8s binary built from source (run without --vault-injector for how).

  python -m bench.injector_compare --vault-injector PATH [--runs 3] [--quick] [--server-cpus 1]

Servers (HTTPS on 127.0.0.1, both up for the whole run, pinned with taskset to the same --server-cpus,
default the last CPU; this process and its load generators keep the other CPUs):
  ours   `python -m webhook --cert-mode files` as webhook_load.py starts it (workers: one per CPU it may use)
  vault  `vault-k8s agent-inject -tls-cert-file -tls-key-file` (no auto TLS). It exits without an in-cluster
         Kubernetes config (rest.InClusterConfig: KUBERNETES_SERVICE_HOST/PORT and the fixed directory
         /var/run/secrets/kubernetes.io/serviceaccount, no kubeconfig flag) and serves no certificate before
         an informer on MutatingWebhookConfigurations has synced. So it gets the bench's control plane
         (bench/kube.py) and a ServiceAccount token bound to its shipped ClusterRole, mounted at that path in a
         private mount namespace (unshare). Its /mutate calls no API.
Bodies: the same bytes to both: webhook_load.py's small and large pods, opted in for both injectors, with the
ServiceAccount token volume the API server adds before it calls webhooks (Vault refuses a pod without one).
Each server must answer both with a non-empty JSONPatch before anything is measured.
Rounds interleaved ours, vault, ours, vault; per server and pod: p50/p99 at --rate (bench.loadgen, open loop),
throughput at saturation (wrk -t1 -c16, else bench.loadgen --rate 0 --connections 16), CPU ms per admission
at saturation (the server's process tree: CPU time delta / requests), the peak memory (PSS) of its process tree during
saturation (summed over its processes), and its CPU use then (well under 100 % of its CPUs: client-bound).
"""
from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import kube, procs, record, stats, webhook_load
from localplane.kube_elector import reviews as pods
from localplane.process import ports

HOW_TO_BUILD = """vault-k8s is not served by the Go module proxy; build v1.7.6 from its public source (go >= 1.26.5):
  git clone --depth 1 --branch v1.7.6 https://github.com/hashicorp/vault-k8s /work/vault-k8s-src
  cd /work/vault-k8s-src && GOTOOLCHAIN=local CGO_ENABLED=0 go build \\
      -ldflags "-X 'github.com/hashicorp/vault-k8s/version.Version=v1.7.6'" -o bin/vault-k8s .
then: .venv/bin/python -m bench.injector_compare --vault-injector /work/vault-k8s-src/bin/vault-k8s"""
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_VOLUME = {"name": "kube-api-access-bench", "projected": {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
ANNOTATIONS = {"elector.dev/inject": "true", "vault.hashicorp.com/agent-inject": "true",
               "vault.hashicorp.com/agent-inject-secret-x": "secret/x", "vault.hashicorp.com/role": "app"}
SIDECAR = {"ours": "elector", "vault": "vault-agent"}  # a container each injector's patch must add
VAULT_NS, VAULT_SA = "vault", "vault-injector"


def opted_in(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as the API server hands it to mutating webhooks: token volume mounted, both opt-ins."""
    pod = copy.deepcopy(pod)
    pod["metadata"]["annotations"] = dict(ANNOTATIONS)
    for container in pod["spec"]["containers"]:
        mount = {"name": SA_VOLUME["name"], "mountPath": SA_DIR, "readOnly": True}
        container.setdefault("volumeMounts", []).append(mount)
    pod["spec"].setdefault("volumes", []).append(SA_VOLUME)
    return pod


def patch_of(port: int, body: bytes, context: ssl.SSLContext) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"https://127.0.0.1:{port}/mutate", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:  # noqa: S310 (loopback)
        response = json.loads(answer.read())["response"]
    patch = json.loads(base64.b64decode(response.get("patch") or "") or b"[]")
    if not response.get("allowed") or response.get("patchType") != "JSONPatch" or not patch:
        raise ValueError(f"no JSONPatch: {json.dumps(response)[:500]}")
    return patch


def wait_patched(name: str, proc: procs.Proc, port: int, bodies: dict[str, bytes], context: ssl.SSLContext) -> None:
    """Poll until the server answers; then every body must get a non-empty patch that adds its sidecar."""
    deadline = time.monotonic() + 90
    while True:
        if not proc.alive():
            raise RuntimeError(f"{name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            patch_of(port, bodies["small"], context)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not serving after 90 s:\n{proc.tail()}") from None
            time.sleep(0.1)
    for pod, body in bodies.items():
        added = json.dumps(patch_of(port, body, context))
        if f'"name": "{SIDECAR[name]}"' not in added:
            raise RuntimeError(f"{name}: the {pod} pod's patch adds no {SIDECAR[name]} container: {added[:500]}")


def start_vault(binary: Path, port: int, cert: Path, key: Path, cpus: str, work: Path) -> tuple[procs.Proc, Any]:
    """The control plane, the injector's ServiceAccount, ClusterRole (as shipped, deploy/injector-rbac.yaml)
    and token, then vault-k8s in a mount namespace where work/run is /run (so /var/run/secrets/...)."""
    plane = kube.start_plane(work / "plane")
    try:
        with plane.client() as api:
            role = {"metadata": {"name": "vault-injector-clusterrole"}, "rules": [
                {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
                 "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
            binding = {"metadata": {"name": "vault-injector-binding"}, "subjects": [
                {"kind": "ServiceAccount", "name": VAULT_SA, "namespace": VAULT_NS}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role["metadata"]["name"]}}
            rbac = "/apis/rbac.authorization.k8s.io/v1"
            for path, body in (("/api/v1/namespaces", {"metadata": {"name": VAULT_NS}}),
                               (f"/api/v1/namespaces/{VAULT_NS}/serviceaccounts", {"metadata": {"name": VAULT_SA}}),
                               (f"{rbac}/clusterroles", role), (f"{rbac}/clusterrolebindings", binding)):
                api.post(path, json=body).raise_for_status()
        secrets = work / "run" / SA_DIR.removeprefix("/var/run/")
        secrets.mkdir(parents=True)
        (secrets / "token").write_text(plane.token(VAULT_NS, VAULT_SA, seconds=6 * 3600))
        (secrets / "ca.crt").write_bytes(plane.ca_pem)
        (secrets / "namespace").write_text(VAULT_NS)
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare[1:1] = ["--user", "--map-root-user"]
        argv = [*unshare, "sh", "-c", 'mount --bind "$0" /run && exec "$@"', work / "run",
                "taskset", "-c", cpus, binary, "agent-inject", "-listen", f"127.0.0.1:{port}",
                "-tls-cert-file", cert, "-tls-key-file", key, "-vault-address", "https://vault.vault.svc:8200"]
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(plane.api_port)}
        return procs.Proc(argv, work / "vault.log", env=env), plane
    except BaseException:
        plane.stop()
        raise


def tree(pid: int) -> list[int]:
    """pid and its descendants (forked workers), from /proc's parent pids."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = procs.read_text(str(stat)).rsplit(")", 1)
        if len(fields) == 2:
            parents.setdefault(int(fields[1].split()[1]), []).append(int(stat.parent.name))
    found = [pid]
    for p in found:
        found += parents.get(p, [])
    return found


def measure(port: int, body: Path, ca: Path, pid: int, *, rate: float, duration: float) -> dict[str, Any]:
    """webhook_load.measure, with the CPU time and peak memory of the server's whole process tree. Memory is
    PSS summed over the processes, what they hold together (a page shared by forked workers counted once,
    as the pod's memory cgroup counts it); the RSS sum, which counts it once per process, is kept as well."""
    pids = tree(pid)
    peak, done = [0, 0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], sum(procs.pss_bytes(p) for p in pids))
            peak[1] = max(peak[1], sum(procs.rss_bytes(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    cpu, started = sum(procs.cpu_seconds(p) for p in pids), time.monotonic()
    sampler.start()
    try:
        result = webhook_load.measure(f"https://127.0.0.1:{port}/mutate", body, ca, rate=rate, duration=duration,
                                      pid=pid)
    finally:
        done.set()
        sampler.join()
    cpu, wall = sum(procs.cpu_seconds(p) for p in pids) - cpu, time.monotonic() - started
    requests = result.get("sent") or result["ok"] + result["errors"]  # wrk reports no "sent"
    return {**result, "cpu_ms": cpu * 1000 / requests, "cpu_use_pct": 100 * cpu / wall, "pss_mib": peak[0] / 2**20,
            "rss_sum_mib": peak[1] / 2**20, "processes": len(pids)}


def cpu_split(spec: str) -> tuple[str, set[int]]:
    """(taskset list for the servers, this process's CPUs: the rest, or all if none is left)."""
    mine = sorted(os.sched_getaffinity(0))
    servers = {int(c) for c in spec.split(",")} if spec else {mine[-1]}
    return ",".join(map(str, sorted(servers))), (set(mine) - servers) or set(mine)


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], duration=4.0, rate=200.0, vault_injector="", server_cpus="")
    if not args.vault_injector or not os.access(args.vault_injector, os.X_OK):
        print(f"--vault-injector PATH: an executable vault-k8s is needed.\n{HOW_TO_BUILD}", file=sys.stderr)
        sys.exit(2)
    binary = Path(args.vault_injector).resolve()
    version = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    duration = 2.0 if args.quick else args.duration
    server_cpus, client_cpus = cpu_split(args.server_cpus)
    os.sched_setaffinity(0, client_cpus)  # the load generators (children) inherit it
    work = Path(tempfile.mkdtemp(prefix="bench-injectors-"))
    ca, cert, key = procs.serving_cert(work)
    reviews = {"small": pods.review(opted_in(pods.pod())), "large": pods.review(opted_in(webhook_load.large_pod()))}
    for name, body in reviews.items():
        (work / f"{name}.review.json").write_bytes(body)
    context = ssl.create_default_context(cafile=str(ca))
    port = {"ours": ports.free_port(), "vault": ports.free_port()}
    servers: dict[str, procs.Proc] = {}
    plane = None
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    try:
        servers["ours"] = procs.Proc(["taskset", "-c", server_cpus, procs.PY, "-m", "webhook", "--host", "127.0.0.1",
                                      "--tls-cert-file", cert, "--tls-key-file", key, "--cert-mode", "files",
                                      "--listen-port", str(port["ours"])], work / "ours.log")
        servers["vault"], plane = start_vault(binary, port["vault"], cert, key, server_cpus, work)
        for name, proc in servers.items():
            wait_patched(name, proc, port[name], reviews, context)
        record.say(f"both answer with a patch; servers on CPU {server_cpus}, load from CPU {sorted(client_cpus)}")
        for run in range(args.runs):
            for pod in reviews:
                for name, proc in servers.items():  # ours, vault, ours, vault ...
                    for mode, rate in (("rate", args.rate), ("saturation", 0.0)):
                        results.setdefault((name, pod, mode), []).append(measure(
                            port[name], work / f"{pod}.review.json", ca, proc.pid, rate=rate, duration=duration))
            record.say(f"run {run + 1}/{args.runs} done")
    finally:
        for proc in servers.values():
            proc.stop()
        if plane is not None:
            plane.stop()

    def vals(name: str, pod: str, mode: str, key: str) -> list[float]:
        return [r[key] for r in results[(name, pod, mode)]]

    rows: list[stats.Row] = []
    for pod in reviews:
        # Issue 24's targets: no more CPU, memory or p99 than the injector, no lower saturation.
        at_most, at_least = ("≤ vault-k8s", lambda v, b: v <= b), ("≥ vault-k8s", lambda v, b: v >= b)
        figures = [("CPU per admission at saturation", "ms", "saturation", "cpu_ms", at_most),
                   ("throughput at saturation", "req/s", "saturation", "rate", at_least),
                   (f"p50 at {args.rate:g} req/s", "ms", "rate", "p50_ms", None),
                   (f"p99 at {args.rate:g} req/s", "ms", "rate", "p99_ms", at_most),
                   ("peak memory during saturation (PSS, all processes)", "MiB", "saturation", "pss_mib", at_most),
                   ("server CPU use during saturation", "% of a CPU", "saturation", "cpu_use_pct", None)]
        rows += [stats.row(f"{figure}, {pod} pod", unit, vals("ours", pod, mode, key),
                           baseline=vals("vault", pod, mode, key), baseline_name="vault-k8s",
                           **({"target": goal[0], "check": goal[1]} if goal else {}))
                 for figure, unit, mode, key, goal in figures]
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    if errors:
        record.say(f"WARNING: {errors} requests failed; see the raw results")
    settings = {"runs": args.runs, "duration_s": duration, "rate": args.rate, "errors": errors, "vault_k8s": version,
                "server_cpus": server_cpus, "client_cpus": sorted(client_cpus),
                "saturation": "wrk -t1 -c16" if shutil.which("wrk") else "bench.loadgen --rate 0 --connections 16",
                "body_bytes": {k: len(v) for k, v in reviews.items()}, "annotations": ANNOTATIONS,
                "order": "per run, per pod: ours then vault, each open loop then saturation"}
    raw = {"/".join(k): v for k, v in results.items()}
    record.report("injector_compare", rows, settings=settings, extra={"raw": raw},
                  columns=("kube-elector (Python) median [min–max]", "vault-k8s (Go) median [min–max]"))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
