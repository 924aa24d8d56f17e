"""Issue 23's attacks at full size against the real processes, with figures: `python -m bench.attacks [PART...]`.

1. `webhook` (slow heads): N slow TLS connections (a head begun, one byte every 5 s, reconnecting when
   closed) to a webhook process registered with a real kube-apiserver, while opted-in pods are created
   (dry run) through the API server: pods refused, webhook RSS (all its processes).
2. `handshakes`: the same with N connections that stall their TLS handshake (half a ClientHello, or
   nothing at all), reconnecting when closed: what a connection costs before its HTTP request exists.
3. `elector`: the elector HTTP server (the probe port's code): 8 connections sending endless headers,
   300 idle ones and 300 slow heads, while a probe is asked every 0.2 s: probes answered, RSS.
No PART: all three. ATTACK_CONNECTIONS sets N (2200); ATTACK_WORKERS the webhook's --workers (its default).
To measure another tree's servers (the "before" figures), run it from that tree's directory: the webhook
runs from the tree its localplane/ is in.
Here the processes are those the node runs, started directly; `python -m bench.attacks_node` runs the
webhook attacks against the webhook pods that manifests/ installs on the node.
"""
from __future__ import annotations

import asyncio
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import kube, procs
from localplane.process.ports import free_port
from localplane.kube_elector import webhook as webhook_install

MIB = 1024 * 1024
SLOW = int(os.environ.get("ATTACK_CONNECTIONS", "2200"))
WORKERS = os.environ.get("ATTACK_WORKERS", "")


def tree_rss_bytes(pid: int) -> int:
    """RSS of `pid` and its children (the webhook's worker processes): what its container's limit counts,
    shared pages counted once per process."""
    return procs.rss_bytes(pid) + sum(tree_rss_bytes(child) for child in procs.children(pid))


async def slow_tls(port: int, count: int, stop: asyncio.Event, counts: dict[str, int], host: str = "127.0.0.1") -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    async def one() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
                counts["opened"] += 1
                writer.write(b"POST /mutate HTTP/1.1\r\n")
                while not stop.is_set() and not reader.at_eof():
                    await asyncio.sleep(5)
                    writer.write(b"X")
                    await writer.drain()
                writer.close()
            except (OSError, ssl.SSLError):
                await asyncio.sleep(0.5)
            counts["closed"] += 1

    await asyncio.gather(*(one() for _ in range(count)))


async def stalled_handshakes(port: int, count: int, stop: asyncio.Event, counts: dict[str, int],
                             host: str = "127.0.0.1") -> None:
    """Connections that send half a ClientHello (every other one: nothing) and wait, reconnecting when closed."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(incoming, outgoing, server_hostname="webhook").do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()

    async def one(n: int) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, port)
                counts["opened"] += 1
                if n % 2:
                    writer.write(hello[: len(hello) // 2])
                while not stop.is_set() and not await reader.read(1024) == b"":
                    pass
                writer.close()
            except OSError:
                await asyncio.sleep(0.5)
            counts["closed"] += 1

    await asyncio.gather(*(one(n) for n in range(count)))


def webhook_attack(workdir: Path, attack: str) -> dict[str, object]:
    plane = kube.start_plane(workdir / "plane")
    try:
        hook = webhook_install.install(plane, workdir / "hook", extra_args=["--workers", WORKERS] if WORKERS else [])
        api = plane.client()
        kube.make_namespace(api, "attack")
        time.sleep(2)
        rss_idle = tree_rss_bytes(hook.process.pid)
        stop, counts = asyncio.Event(), {"opened": 0, "closed": 0}
        loop = asyncio.new_event_loop()
        attacker = slow_tls if attack == "webhook" else stalled_handshakes
        thread = threading.Thread(target=lambda: loop.run_until_complete(attacker(hook.port, SLOW, stop, counts)))
        thread.start()
        time.sleep(15)
        refused, created, peak = [], 0, rss_idle
        for i in range(30):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "annotations": {"elector.dev/inject": "true"}},
                   "spec": {"containers": [{"name": "app", "image": "a"}]}}
            reply = api.post("/api/v1/namespaces/attack/pods", params={"dryRun": "All"}, json=pod)
            created += reply.status_code == 201
            if reply.status_code != 201:
                refused.append(reply.text[:200])
            peak = max(peak, tree_rss_bytes(hook.process.pid))
            time.sleep(0.5)
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        return {"attack": attack, "connections": SLOW, "workers": WORKERS or "default", "opened": counts["opened"],
                "pods created": created, "pods refused": len(refused), "first refusal": refused[0] if refused else "",
                "webhook RSS idle MiB": round(rss_idle / MIB, 1), "webhook RSS peak MiB": round(peak / MIB, 1)}
    finally:
        plane.stop()


ELECTOR_SERVER = """
import asyncio, sys
try:
    from elector.serve import httpserver
except ImportError:
    from elector import httpserver
async def route(request):
    return httpserver.text_reply("ok\\n")
async def main():
    server = await httpserver.serve("127.0.0.1", int(sys.argv[1]), route)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


async def elector_attack() -> dict[str, object]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ELECTOR_SERVER, str(port)], stdout=subprocess.PIPE)
    assert proc.stdout and proc.stdout.readline().strip() == b"ready"
    rss_idle = procs.rss_bytes(proc.pid)
    stop = asyncio.Event()
    ok = failed = 0
    peak = rss_idle

    # Attackers on 8 addresses (8 pods), the probe on its own (the node's), as on a cluster.
    async def big_headers(source: str) -> None:
        while not stop.is_set():
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
                writer.write(b"GET / HTTP/1.1\r\n")
                for n in range(10**6):  # distinct names: each one is kept
                    if stop.is_set():
                        break
                    writer.write(b"X-%d: " % n + b"a" * 60000 + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            except OSError:
                await asyncio.sleep(0.1)

    async def idle(source: str) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
                writer.write(b"G")
                await reader.read()
            except OSError:
                await asyncio.sleep(0.1)

    sources = [f"127.0.0.{i}" for i in range(2, 10)]
    tasks = ([asyncio.ensure_future(big_headers(s)) for s in sources]
             + [asyncio.ensure_future(idle(sources[i % 8])) for i in range(600)])
    await asyncio.sleep(5)
    for _ in range(100):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
            writer.write(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
            status = await asyncio.wait_for(reader.readline(), 1)
            ok += status.startswith(b"HTTP/1.1 200")
            failed += not status.startswith(b"HTTP/1.1 200")
            writer.close()
        except (OSError, asyncio.TimeoutError):
            failed += 1
        peak = max(peak, procs.rss_bytes(proc.pid))
        await asyncio.sleep(0.2)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2)
    after = procs.rss_bytes(proc.pid)
    proc.kill()
    return {"probes answered": ok, "probes failed": failed, "RSS idle MiB": round(rss_idle / MIB, 1),
            "RSS peak MiB": round(peak / MIB, 1), "RSS after MiB": round(after / MIB, 1)}


def main(parts: list[str]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for part in parts or ["elector", "webhook", "handshakes"]:
        if part == "elector":
            print("elector server:", asyncio.run(elector_attack()), flush=True)
            continue
        if part not in ("webhook", "handshakes"):
            raise SystemExit(f"unknown part {part!r}: elector, webhook or handshakes")
        with tempfile.TemporaryDirectory() as work:
            print("webhook:", webhook_attack(Path(work), part), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
