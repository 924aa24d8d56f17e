"""The webhook on several processes (webhook/workers.py): the CPU count, then a real `python -m webhook
--workers 2` over TLS: certificate reloads reach every worker, metrics count every worker's admissions,
and SIGTERM drains every worker before the container's process exits 0."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from certs import pki
from localplane.process.ports import free_port
from webhook import workers

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cpu_max, quota, period, cores", [
    ("max 100000", None, None, None),
    ("150000 100000", None, None, 1.5),
    (None, "200000", "100000", 2.0),
    (None, "-1", "100000", None),
    (None, None, None, None),
    ("garbage", None, None, None),
])
def test_the_cpu_limit_comes_from_either_cgroup_version(cpu_max, quota, period, cores):
    assert workers.cpu_limit(cpu_max, quota, period) == cores


def test_the_cpu_count_is_the_affinity_capped_by_the_limit_rounded_up(tmp_path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert workers.cpu_count(str(tmp_path)) == 1  # half a core: one process
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert workers.cpu_count(str(tmp_path)) == len(os.sched_getaffinity(0))


def write_pair(directory: Path, name: str) -> bytes:
    """A fresh CA and serving certificate for 127.0.0.1, written over tls.crt/tls.key; its DER."""
    ca = pki.make_ca(name, days=1)
    pair = pki.make_serving_cert(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=1)
    pair.write(directory, "tls")
    return ssl.PEM_cert_to_DER_cert(pair.cert_pem.decode())


def connect(port: int) -> http.client.HTTPSConnection:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the certificate is what is looked at
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)


def served_cert(port: int) -> bytes:
    conn = connect(port)
    conn.connect()
    try:
        return conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()


def request(conn: http.client.HTTPSConnection, method: str, path: str, body: bytes | None = None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response, response.read()


def test_two_workers_reload_certificates_share_metrics_and_drain_on_sigterm(tmp_path):
    first = write_pair(tmp_path, "first-ca")
    port = free_port()
    log_path = tmp_path / "webhook.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webhook", "--workers", "2", "--host", "127.0.0.1", "--listen-port", str(port),
             "--cert-mode", "files", "--tls-cert-file", str(tmp_path / "tls.crt"),
             "--tls-key-file", str(tmp_path / "tls.key"), "--cert-reload-seconds", "0.2",
             "--shutdown-drain-seconds", "1"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response, _ = request(connect(port), "GET", "/readyz")
                if response.status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        started = next(e for e in events if e.get("event") == "workers_started")
        assert started["processes"] == 2 and len(started["pids"]) == 2, events
        assert served_cert(port) == first

        # a new pair on disk: every worker serves it (consecutive fresh connections land on either)
        second = write_pair(tmp_path, "second-ca")
        deadline = time.monotonic() + 30
        while not all(served_cert(port) == second for _ in range(12)):
            assert time.monotonic() < deadline, "a worker kept the old certificate\n" + log_path.read_text()
            time.sleep(0.1)

        # six bad reviews on fresh connections (either worker): /metrics of any worker counts all six
        for _ in range(6):
            response, _ = request(connect(port), "POST", "/mutate", b"not json")
            assert response.status == 400
        for _ in range(4):
            response, text = request(connect(port), "GET", "/metrics")
            counted = re.search(rb'kube_elector_admissions_total\{result="invalid"\} (\S+)', text)
            assert counted and float(counted.group(1)) == 6.0, text.decode()

        # SIGTERM to the first process: a kept-alive connection is still answered, then closed; exit 0
        kept = connect(port)
        response, _ = request(kept, "GET", "/healthz")
        assert response.status == 200 and response.getheader("connection") is None
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        response, _ = request(kept, "GET", "/healthz")
        assert response.status == 200 and response.getheader("connection") == "close"
        assert proc.wait(30) == 0, log_path.read_text()
        for pid in started["pids"]:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert "Traceback" not in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
