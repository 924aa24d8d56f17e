"""1. Webhook throughput and latency over HTTPS, against a bare uvicorn+TLS baseline in the same run.

Servers (all on 127.0.0.1, all running for the whole benchmark, measured round-robin per run):
  baseline   bench.servers canned: the same uvicorn+uvloop+httptools+TLS stack answering the webhook's
             own precomputed answer, with no parsing, no injection, no Starlette
  webhook    `python -m webhook --cert-mode files` as shipped (it writes nothing to the API)
  variants   the real app under other settings (bench.servers webhook ...), small pod only
Load: bench.loadgen (open loop at --rate) for latency, wrk (closed loop, 1 thread) for saturation.
"""
from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench import procs, record, stats
from localplane.process import ports
from localplane.kube_elector import reviews as pods

VARIANTS = {  # name -> extra args of `bench.servers webhook`
    "asyncio loop": ["--loop", "asyncio"],
    "h11 parser": ["--http", "h11"],
    "stdlib json": ["--json", "stdlib"],
    "log level warning": ["--log-level", "warning"],
    "2 workers": ["--workers", "2"],
    "gc.freeze after start-up": ["--gc-freeze"],
}


def large_pod() -> dict[str, Any]:
    """12 containers x 40 env vars, with ports, mounts, probes and resources: ~60 kB of JSON."""
    pod = pods.pod()
    pod["spec"]["containers"] = [{
        "name": f"c{i}", "image": f"registry.example.com/team/app-{i}:1.2.{i}",
        "env": [{"name": f"SETTING_{j}", "value": f"value-{i}-{j}-" + "x" * 40} for j in range(40)],
        "ports": [{"containerPort": 8000 + i, "name": f"http-{i}"}],
        "volumeMounts": [{"name": "data", "mountPath": f"/data/{i}"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000 + i}, "periodSeconds": 5},
    } for i in range(12)]
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    return pod


def bodies() -> dict[str, bytes]:
    skip = pods.pod(**{"metadata.annotations": None})
    return {"small": pods.review(pods.pod()), "large": pods.review(large_pod()), "skip": pods.review(skip)}


def canned_answers(reviews: dict[str, bytes], directory: Path) -> None:
    """The webhook's real answer to each review, for the baseline to send without computing it."""
    from webhook import admission, handler, settings

    cfg = settings.load([])
    for name, body in reviews.items():
        outcome = handler.handle(admission.parse_review(body), namespace_opted_in=False, settings=cfg)
        assert (outcome.result == "skipped") == (name == "skip"), (name, outcome.result)
        (directory / f"{name}.json").write_bytes(orjson.dumps(outcome.review))


def measure(url: str, body: Path, ca: Path, *, rate: float, duration: float, pid: int) -> dict[str, Any]:
    """One run of load; adds the server's CPU milliseconds per request (its worker processes included)."""
    cpu_before = procs.tree_cpu_seconds(pid)
    wrk = shutil.which("wrk")
    if rate == 0 and wrk:
        argv = [wrk, "-t1", "-c16", f"-d{duration:g}s", "-s", str(Path(__file__).with_name("post.lua")), url]
        env = {**os.environ, "BENCH_BODY": str(body)}
    else:
        argv = [procs.PY, "-m", "bench.loadgen", url, "--body", str(body), "--ca", str(ca),
                "--rate", str(rate), "--duration", str(duration), "--connections", "16" if rate == 0 else "8"]
        env = None
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, env=env, cwd=record.ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{argv[0]} failed: {done.stdout[-500:]} {done.stderr[-1500:]}")
    result = json.loads(lines[-1])
    if result.get("sent"):
        result["cpu_ms"] = (procs.tree_cpu_seconds(pid) - cpu_before) * 1000 / result["sent"]
    return result


def main() -> None:
    args = record.cli(__doc__.splitlines()[0], duration=4.0, rate=200.0)
    duration = 2.0 if args.quick else args.duration
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    ca, cert, key = procs.serving_cert(work)
    reviews = bodies()
    for name, body in reviews.items():
        (work / f"{name}.review.json").write_bytes(body)
    (work / "canned").mkdir()
    canned_answers(reviews, work / "canned")

    tls = ["--cert", cert, "--key", key]
    commands = {
        "baseline": [procs.PY, "-m", "bench.servers", "canned", *tls, "--canned", work / "canned"],
        "webhook": [procs.PY, "-m", "webhook", "--host", "127.0.0.1", "--tls-cert-file", cert, "--tls-key-file", key,
                    "--cert-mode", "files"],
        **{name: [procs.PY, "-m", "bench.servers", "webhook", *tls, *extra] for name, extra in VARIANTS.items()},
    }
    servers: dict[str, tuple[procs.Proc, int]] = {}
    context = ssl.create_default_context(cafile=str(ca))
    try:
        for name, argv in commands.items():
            port = ports.free_port()
            port_flag = ["--listen-port", str(port)] if name == "webhook" else ["--port", str(port)]
            proc = procs.Proc([*argv, *port_flag], work / f"{name.replace(' ', '-')}.log")
            servers[name] = (proc, port)
        for name, (proc, port) in servers.items():
            procs.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, proc=proc.popen)
        plan = [(s, p) for p in reviews for s in ("baseline", "webhook")] + [(v, "small") for v in VARIANTS]
        results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for run in range(args.runs):
            for server, pod in plan:
                proc, port = servers[server]
                path = f"/mutate/{pod}" if server == "baseline" else "/mutate"
                for mode, rate in (("rate", args.rate), ("saturation", 0.0)):
                    result = measure(f"https://127.0.0.1:{port}{path}", work / f"{pod}.review.json", ca,
                                     rate=rate, duration=duration, pid=proc.pid)
                    results.setdefault((server, pod, mode), []).append(result)
            record.say(f"run {run + 1}/{args.runs} done")
    finally:
        for proc, _ in servers.values():
            proc.stop()

    def vals(server: str, pod: str, mode: str, key: str) -> list[float]:
        return [r[key] for r in results[(server, pod, mode)]]

    rate = f"{args.rate:g} req/s"
    rows: list[stats.Row] = []
    for pod in reviews:
        base = lambda mode, key: dict(baseline=vals("baseline", pod, mode, key), baseline_name="bare uvicorn+TLS")  # noqa: E731
        rows += [
            stats.row(f"throughput at saturation, {pod} pod", "req/s", vals("webhook", pod, "saturation", "rate"),
                       **base("saturation", "rate"), target="≥ 60 % of baseline",
                       check=lambda v, b: b is not None and v >= 0.6 * b),
            stats.row(f"p50 at {rate}, {pod} pod", "ms", vals("webhook", pod, "rate", "p50_ms"), **base("rate", "p50_ms")),
            stats.row(f"p99 at {rate}, {pod} pod", "ms", vals("webhook", pod, "rate", "p99_ms"), **base("rate", "p99_ms"),
                       target="≤ 5 ms", check=lambda v, b: v <= 5.0),
            stats.row(f"server CPU per request at {rate}, {pod} pod", "ms", vals("webhook", pod, "rate", "cpu_ms"),
                       **base("rate", "cpu_ms")),
        ]
    shipped = lambda mode, key: dict(baseline=vals("webhook", "small", mode, key), baseline_name="python -m webhook")  # noqa: E731
    for variant in VARIANTS:
        rows += [
            stats.row(f"variant {variant}: throughput at saturation", "req/s",
                       vals(variant, "small", "saturation", "rate"), **shipped("saturation", "rate")),
            stats.row(f"variant {variant}: p99 at {rate}", "ms", vals(variant, "small", "rate", "p99_ms"),
                       **shipped("rate", "p99_ms")),
        ]
    errors = sum(r["errors"] for rs in results.values() for r in rs)
    settings = {"runs": args.runs, "duration_s": duration, "rate": args.rate, "saturation": "wrk -t1 -c16"
                if shutil.which("wrk") else "bench.loadgen --rate 0 --connections 16", "errors": errors,
                "body_bytes": {k: len(v) for k, v in reviews.items()}, "variants": VARIANTS}
    record.report("webhook_load", rows, settings=settings,
                  extra={"raw": {"/".join(k): v for k, v in results.items()}})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
