"""The paths of the webhook image's three programs, traced by rootfs.py (`--app webhook`) in the build stage.

kube-elector-certs: --help, a bad flag, two certificate sets written. kube-elector-webhook: --help, bad
flags and values, a bad and a good --config file, environment settings; certificates from files on one
process and on two (workers forked), each serving admissions (injected, skipped, bad JSON, too large), the
probes and /metrics, a rejected then a rotated certificate, SIGTERM and SIGINT drains; self-managed
certificates against fake_api.py (Secret created, webhook configuration missing) on two processes, against
an unreachable server, and with no cluster at all. kube-elector-controller: --help, a bad flag, a run
against fake_api.py (it leads, its informers fail) and one against an unreachable server. Exceptions and
warnings logged, and every module of the four packages imported.
"""
from __future__ import annotations

import json
import shutil
import signal
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

from rootfs import EXCEPTION_LOG, Tracer, free_port, kubeconfig, say, start_fake_api, wait_until

WEBHOOK = {"TRACE_ENTRY": "webhook.__main__", "TRACE_PROG": "kube-elector-webhook"}
CONTROLLER = {"TRACE_ENTRY": "controller.__main__", "TRACE_PROG": "kube-elector-controller"}
CERTS = {"TRACE_ENTRY": "certs.__main__", "TRACE_PROG": "kube-elector-certs"}
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"generateName": "web-5d8f7c9b4-", "namespace": "trace", "annotations": {"elector.dev/inject": "true"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b4",
                                         "uid": "1", "controller": True}]},
       "spec": {"serviceAccountName": "web", "containers": [{"name": "app", "image": "app:1"}]}}
IMPORT_ALL = (
    "import importlib, pkgutil, yaml\n"
    "for package in ('webhook', 'controller', 'certs', 'elector'):\n"
    "    root = importlib.import_module(package)\n"
    "    for module in pkgutil.walk_packages(root.__path__, package + '.'):\n"
    "        importlib.import_module(module.name)\n"
    "yaml.safe_load('a: [1, {b: c}]')\n"
)
WEBHOOK_EXCEPTION_LOG = EXCEPTION_LOG.replace("from elector.ops import logs", "from webhook import logs").replace(
    'logs.setup(fmt=fmt, level="info", pod="p", election="ns/e")', 'logs.setup("info")')
assert WEBHOOK_EXCEPTION_LOG.count("webhook") == 1 and "logs.setup(\"info\")" in WEBHOOK_EXCEPTION_LOG


def review(pod: dict, uid: str = "trace") -> bytes:
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "trace",
        "operation": "CREATE", "object": pod}}).encode()


def https(port: int, path: str, data: bytes | None = None) -> int:
    """The status of a request to the webhook over TLS (its certificate not checked here)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310 (loopback)
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code


def exercise(tracer: Tracer, port: int) -> None:
    wait_until(lambda: https(port, "/readyz") == 200, 30, "the webhook's /readyz", tracer)
    for path, data, status in (
        ("/mutate", review(POD), 200),
        ("/mutate/namespace", review({**POD, "metadata": {**POD["metadata"], "annotations": {}}}), 200),
        ("/mutate", b"{not json", 400),
        ("/mutate", b"x" * 4096, 413),
        ("/healthz", None, 200),
        ("/metrics", None, 200),
        ("/nowhere", None, 404),
    ):
        got = https(port, path, data)
        if got != status:
            tracer.fail(f"{path}: {got}, expected {status}")


def trace(venv: Path, work: Path) -> set[str]:
    tracer = Tracer(venv, work)
    fake, api = start_fake_api(work)
    try:
        plain = kubeconfig(work / "plain.json", f"http://127.0.0.1:{api}", user="token")
        unreachable = kubeconfig(work / "down.json", f"https://127.0.0.1:{free_port()}", user="token")

        tracer.run(["--help"], 0, **CERTS)
        tracer.run(["--no-such-flag"], 2, **CERTS)
        for name in ("first", "second"):
            tracer.run(["--out", str(work / name), "--ip", "127.0.0.1", "--dns", "localhost"], 0, **CERTS)

        tracer.run(["--help"], 0, **WEBHOOK)
        tracer.run(["--no-such-flag"], 2, **WEBHOOK)
        tracer.run(["--listen-port=1"], 1, **WEBHOOK)
        (work / "bad.yaml").write_text("cert_mode: [files\n")
        tracer.run(["--config", str(work / "bad.yaml")], 1, **WEBHOOK)
        (work / "good.yaml").write_text(f"cert_mode: files\ntls_cert_file: {work}/missing.crt\n")
        tracer.run(["--config", str(work / "good.yaml")], 1, KUBE_ELECTOR_LOG_LEVEL="debug", **WEBHOOK)
        tracer.run([], 0, code=WEBHOOK_EXCEPTION_LOG)
        tracer.run([], 0, code=IMPORT_ALL)

        # certificates from files, one process then two: admissions, a bad then a rotated certificate, drains
        live = work / "live"
        shutil.copytree(work / "first", live)
        for workers, sig in ((1, signal.SIGTERM), (2, signal.SIGINT)):
            port = free_port()
            proc = tracer.start(["--cert-mode=files", f"--tls-cert-file={live}/tls.crt", f"--tls-key-file={live}/tls.key",
                                 "--cert-reload-seconds=0.2", "--shutdown-drain-seconds=0.3", "--host=127.0.0.1",
                                 f"--listen-port={port}", f"--workers={workers}", "--max-body-bytes=1024"], **WEBHOOK)
            exercise(tracer, port)
            if workers == 1:
                (live / "tls.crt").write_text("not a certificate")
                time.sleep(0.6)
                shutil.copy(work / "second" / "tls.crt", live / "tls.crt")
                shutil.copy(work / "second" / "tls.key", live / "tls.key")
                time.sleep(0.6)
                exercise(tracer, port)
            proc.send_signal(sig)
            tracer.finish(proc, 0)

        # self-managed certificates: against the fake API on two processes, then unreachable, then no cluster
        port = free_port()
        proc = tracer.start(["--cert-mode=self-managed", f"--kubeconfig={plain}", "--namespace=trace",
                             "--cert-extra-ips=[\"127.0.0.1\"]", "--cert-reload-seconds=0.3", "--host=127.0.0.1",
                             f"--listen-port={port}", "--workers=2", "--shutdown-drain-seconds=0",
                             "--max-body-bytes=1024"], **WEBHOOK)
        exercise(tracer, port)
        time.sleep(0.7)  # each worker's refresh
        proc.send_signal(signal.SIGTERM)
        tracer.finish(proc, 0)
        tracer.run(["--cert-mode=self-managed", f"--kubeconfig={unreachable}", "--workers=1"], 1, **WEBHOOK)
        tracer.run(["--cert-mode=self-managed"], 1, **WEBHOOK)

        tracer.run(["--help"], 0, **CONTROLLER)
        tracer.run(["--no-such-flag"], 2, **CONTROLLER)
        for config, fmt in ((plain, "json"), (unreachable, "text")):
            proc = tracer.start([f"--kubeconfig={config}", "--namespace=trace", "--identity=trace-controller",
                                 f"--health-address=127.0.0.1:{free_port()}", f"--log-format={fmt}",
                                 "--log-level=debug"], **CONTROLLER)
            time.sleep(2.5)
            proc.send_signal(signal.SIGTERM)
            tracer.finish(proc, 0)
    finally:
        fake.kill()
        fake.wait()
    found = tracer.modules()
    say(f"trace: {tracer.runs} runs, {len(found)} modules in sys.modules")
    return found
