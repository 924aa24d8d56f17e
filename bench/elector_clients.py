"""Footprint of Kubernetes client candidates for the elector sidecar: time to first API answer, and RSS.

Each candidate runs in a fresh interpreter doing what the elector does: load the kubeconfig, read the
Lease (creating it if missing) = "ready", then renew it (GET + PUT) every 0.5 s. RSS is read from
/proc after `--steady` seconds. The `stdlib` candidate is the real sidecar (`python -m elector`),
ready when /readyz answers 200.

    .venv/bin/python bench/elector_clients.py                      # starts a local control plane
    .venv/bin/python bench/elector_clients.py --kubeconfig K --python /tmp/benchvenv/bin/python

Candidates whose library is missing from `--python` are reported as skipped
(pip install kubernetes kubernetes-asyncio lightkube httpx aiohttp pyyaml).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from localplane.process import ports

ROOT = Path(__file__).resolve().parents[1]

_COMMON = """
import json, os, ssl, sys, time, base64, tempfile
KUBECONFIG, NS, NAME = sys.argv[1], sys.argv[2], sys.argv[3]
def stamp():
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
def lease_body(rv=None):
    meta = {"name": NAME, "namespace": NS}
    if rv: meta["resourceVersion"] = rv
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
            "spec": {"holderIdentity": "bench", "leaseDurationSeconds": 15, "renewTime": stamp()}}
def raw_config():
    cfg = json.load(open(KUBECONFIG))
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    if "client-certificate-data" in user:
        tmp = tempfile.mkdtemp()
        for key, file in (("client-certificate-data", "c.pem"), ("client-key-data", "k.pem")):
            open(os.path.join(tmp, file), "wb").write(base64.b64decode(user[key]))
        ctx.load_cert_chain(os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem"))
    elif "client-certificate" in user:
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    headers = {"Authorization": "Bearer " + user["token"]} if "token" in user else {}
    return cluster["server"], ctx, headers
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
def ready():
    print("READY", flush=True)
"""

CANDIDATES: dict[str, str] = {
    "kubernetes (official, sync)": """
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(KUBECONFIG)
api = client.CoordinationV1Api()
try:
    lease = api.read_namespaced_lease(NAME, NS)
except ApiException as exc:
    assert exc.status == 404
    lease = api.create_namespaced_lease(NS, lease_body())
ready()
while True:
    time.sleep(0.5)
    lease = api.read_namespaced_lease(NAME, NS)
    lease.spec.renew_time = None
    api.replace_namespaced_lease(NAME, NS, lease)
""",
    "kubernetes-asyncio": """
import asyncio
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException
async def main():
    await config.load_kube_config(KUBECONFIG)
    async with client.ApiClient() as api_client:
        api = client.CoordinationV1Api(api_client)
        try:
            await api.read_namespaced_lease(NAME, NS)
        except ApiException as exc:
            assert exc.status == 404
            await api.create_namespaced_lease(NS, lease_body())
        ready()
        while True:
            await asyncio.sleep(0.5)
            lease = await api.read_namespaced_lease(NAME, NS)
            await api.replace_namespaced_lease(NAME, NS, lease)
asyncio.run(main())
""",
    "lightkube (async)": """
import asyncio
from lightkube import AsyncClient, KubeConfig, ApiError
from lightkube.resources.coordination_v1 import Lease
async def main():
    client = AsyncClient(config=KubeConfig.from_file(KUBECONFIG))
    try:
        await client.get(Lease, NAME, namespace=NS)
    except ApiError as exc:
        assert exc.status.code == 404
        await client.create(Lease.from_dict(lease_body()))
    ready()
    while True:
        await asyncio.sleep(0.5)
        lease = await client.get(Lease, NAME, namespace=NS)
        await client.replace(lease)
asyncio.run(main())
""",
    "httpx (async, raw REST)": """
import asyncio, httpx
async def main():
    server, ctx, headers = raw_config()
    async with httpx.AsyncClient(base_url=server, verify=ctx, headers=headers, trust_env=False) as c:
        r = await c.get(f"{PATH}/{NAME}")
        if r.status_code == 404:
            r = await c.post(PATH, json=lease_body())
        ready()
        while True:
            await asyncio.sleep(0.5)
            obj = (await c.get(f"{PATH}/{NAME}")).json()
            obj["spec"]["renewTime"] = stamp()
            await c.put(f"{PATH}/{NAME}", json=obj)
asyncio.run(main())
""",
    "aiohttp (raw REST)": """
import asyncio, aiohttp
async def main():
    server, ctx, headers = raw_config()
    async with aiohttp.ClientSession(base_url=server, headers=headers) as c:
        async with c.get(f"{PATH}/{NAME}", ssl=ctx) as r:
            status = r.status
        if status == 404:
            async with c.post(PATH, json=lease_body(), ssl=ctx) as r:
                await r.read()
        ready()
        while True:
            await asyncio.sleep(0.5)
            async with c.get(f"{PATH}/{NAME}", ssl=ctx) as r:
                obj = await r.json()
            obj["spec"]["renewTime"] = stamp()
            async with c.put(f"{PATH}/{NAME}", json=obj, ssl=ctx) as r:
                await r.read()
asyncio.run(main())
""",
}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_script(python: str, code: str, kubeconfig: str, name: str, steady: float) -> tuple[float, float]:
    """(seconds to READY, RSS MB after `steady` seconds); raises RuntimeError if it fails."""
    started = time.monotonic()
    proc = subprocess.Popen([python, "-c", _COMMON + textwrap.dedent(code), kubeconfig, "default", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        ready = time.monotonic() - started
        if line.strip() != "READY":
            raise RuntimeError((proc.stderr.read() if proc.stderr else "")[-400:])
        time.sleep(steady)
        if proc.poll() is not None:
            raise RuntimeError((proc.stderr.read() if proc.stderr else "")[-400:])
        return ready, _rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def run_elector(python: str, kubeconfig: str, name: str, steady: float) -> tuple[float, float]:
    probe = ports.free_port()
    started = time.monotonic()
    env = {**os.environ, "POD_NAME": f"bench-{name}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([python, "-m", "elector", f"--election={name}", "--election-namespace=default",
                             f"--http=localhost:{ports.free_port()}", f"--probe-address=127.0.0.1:{probe}",
                             f"--kubeconfig={kubeconfig}", "--lease-duration=3s", "--renew-deadline=2s",
                             "--retry-period=500ms"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{probe}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() - started > 20:
                raise RuntimeError((proc.stderr.read() if proc.stderr else b"")[-400:].decode())
            time.sleep(0.005)
        ready = time.monotonic() - started
        time.sleep(steady)
        return ready, _rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _cluster(kubeconfig: Optional[str]) -> Iterator[str]:
    if kubeconfig:
        yield kubeconfig
        return
    sys.path.insert(0, str(ROOT))
    from localplane.controlplane import plane
    from localplane.process import binaries

    with tempfile.TemporaryDirectory() as tmp:
        with plane.ControlPlane.start(Path(tmp), bins=binaries.ensure()) as cluster:
            yield str(cluster.kubeconfig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="an existing cluster (default: start a local control plane)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the candidate libraries")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady", type=float, default=5.0, help="seconds of renewals before reading RSS")
    args = parser.parse_args()
    with _cluster(args.kubeconfig) as kubeconfig:
        print(f"python: {subprocess.check_output([args.python, '--version'], text=True).strip()}, "
              f"{args.runs} runs, RSS after {args.steady:g}s of renewals every 0.5s")
        print(f"{'candidate':32} {'ready s (median)':>17} {'RSS MB (median)':>16}")
        rows = [("stdlib asyncio+ssl (kube-elector)", None), *CANDIDATES.items()]
        for index, (label, code) in enumerate(rows):
            readies, rsses = [], []
            try:
                for run in range(args.runs):
                    name = f"bench-{index}-{run}-{os.getpid()}"
                    if code is None:
                        ready, rss = run_elector(args.python, kubeconfig, name, args.steady)
                    else:
                        ready, rss = run_script(args.python, code, kubeconfig, name, args.steady)
                    readies.append(ready)
                    rsses.append(rss)
            except RuntimeError as exc:
                print(f"{label:32} skipped: {str(exc).strip().splitlines()[-1] if str(exc).strip() else 'failed'}")
                continue
            print(f"{label:32} {statistics.median(readies):17.3f} {statistics.median(rsses):16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
