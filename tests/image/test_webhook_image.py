"""The webhook image (`FROM scratch`, tools/elector-image/rootfs.py --app webhook) misses nothing at run time:
its three programs (kube-elector-webhook, kube-elector-controller, kube-elector-certs) run in it as the
manifests run them (uid 65532, read-only root, no capabilities) through the paths that import late:
flags and errors, certificates written then served, a rejected and a rotated certificate on two worker
processes, admissions, /metrics, the SIGTERM drain, and the controller against the real kube-apiserver.
"""
from __future__ import annotations

import json
import os
import re
import ssl
import time
import uuid
from pathlib import Path

import pytest

from localplane.process.ports import free_port
from tests.image.conftest import LIGHT_IMAGE_CHECKS, SECURITY, podman, wait_for
from tests.unit.webhook.test_workers import connect, request, served_cert

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("kube-elector-webhook", "kube-elector-controller", "kube-elector-certs")


@pytest.fixture(scope="session")
def webhook_image() -> str:
    image = os.environ.get("WEBHOOK_IMAGE") or next(
        line.partition("=")[2].strip() for line in (ROOT / "tools" / "images.env").read_text().splitlines()
        if line.startswith("WEBHOOK_IMAGE="))
    if podman("image", "exists", image).returncode != 0:
        pytest.fail(f"image {image} not built: run `make images`")
    return image


def run(image: str, entrypoint: str, *args: str, volumes: tuple[str, ...] = ()) -> tuple[int, str, str]:
    done = podman("run", "--rm", "--network=none", *SECURITY, "--tmpfs=/tmp", *(f"--volume={v}" for v in volumes),
                  f"--entrypoint={entrypoint}", image, *args)
    return done.returncode, done.stdout, done.stderr


def clean(logs: str) -> None:
    assert "ModuleNotFoundError" not in logs and "ImportError" not in logs and "Traceback" not in logs, logs


def certificates(image: str, directory: Path) -> bytes:
    """kube-elector-certs run in the image writes the pair into `directory`; the serving cert's DER."""
    directory.mkdir(mode=0o777, exist_ok=True)
    directory.chmod(0o777)
    rc, out, err = run(image, "kube-elector-certs", "--out", "/out", "--ip", "127.0.0.1", volumes=(f"{directory}:/out",))
    assert rc == 0, out + err
    clean(out + err)
    return ssl.PEM_cert_to_DER_cert((directory / "tls.crt").read_text())


def test_the_three_programs_answer_help_and_name_bad_flags(webhook_image: str) -> None:
    for program in PROGRAMS:
        rc, out, err = run(webhook_image, program, "--help")
        assert rc == 0 and "usage:" in out, (program, out, err)
        rc, out, err = run(webhook_image, program, "--no-such-flag")
        assert rc == 2 and ("--no-such-flag" in err or "required: --out" in err), (program, out, err)
        clean(out + err)
    rc, out, err = run(webhook_image, "kube-elector-webhook", "--listen-port=0")
    assert rc == 1 and "listen" in err and "Traceback" not in err, err


def test_every_module_imports_and_the_image_is_the_light_one(webhook_image: str) -> None:
    code = (
        "import os, sys\n"
        "assert os.getuid() == 65532\n"
        "for path in ('/bin/sh', '/usr/bin/sh', '/bin/bash', '/usr/bin/apt-get', '/usr/bin/dpkg'):\n"
        "    assert not os.path.lexists(path), path\n"
        "for package in ('webhook', 'controller', 'certs', 'elector'):\n"
        "    root = __import__(package).__path__[0]\n"
        "    for where, dirs, files in os.walk(root):\n"
        "        dirs[:] = [d for d in dirs if d != '__pycache__']\n"
        "        rel = os.path.relpath(where, root)\n"
        "        base = package if rel == '.' else package + '.' + rel.replace(os.sep, '.')\n"
        "        for f in files:\n"
        "            if f.endswith('.py'):\n"
        "                __import__(base if f == '__init__.py' else base + '.' + f[:-3])\n"
    ) + LIGHT_IMAGE_CHECKS.format(absent=("pip", "kubernetes", "fastapi"))
    rc, out, err = run(webhook_image, "python", "-c", code)
    assert rc == 0 and not err, err


def test_two_workers_serve_rotate_count_and_drain_in_the_image(webhook_image: str, tmp_path: Path) -> None:
    live = tmp_path / "live"
    first = certificates(webhook_image, live)
    port, name = free_port(), f"image-test-webhook-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", f"--name={name}", "--network=host", *SECURITY, "--tmpfs=/tmp",
           f"--volume={live}:/etc/kube-elector/tls:ro", webhook_image, "--cert-mode=files", "--workers=2",
           "--host=127.0.0.1", f"--listen-port={port}", "--cert-reload-seconds=0.2", "--shutdown-drain-seconds=1",
           check=True)
    logs = lambda: (lambda d: d.stdout + d.stderr)(podman("logs", name))  # noqa: E731
    try:
        wait_for(lambda: _status(port, "/readyz") == 200, 30, "the webhook to be ready", logs)
        assert served_cert(port) == first
        review = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "ns", "operation": "CREATE",
            "object": {"metadata": {"name": "p", "annotations": {"elector.dev/inject": "true"}},
                       "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}).encode()
        response, body = request(connect(port), "POST", "/mutate", review)
        assert response.status == 200 and json.loads(body)["response"]["allowed"] is True, body
        for _ in range(3):
            assert request(connect(port), "POST", "/mutate", b"not json")[0].status == 400

        # a half-written pair is rejected (logged), then a new pair is served by both workers
        (live / "tls.crt").write_text("not a certificate")
        wait_for(lambda: "cert_rejected" in logs(), 15, "the rejected certificate", logs)
        second = certificates(webhook_image, tmp_path / "second")
        for file in ("tls.key", "tls.crt"):
            (live / file).write_bytes((tmp_path / "second" / file).read_bytes())
        wait_for(lambda: all(served_cert(port) == second for _ in range(12)), 30, "every worker on the new pair", logs)
        text = request(connect(port), "GET", "/metrics")[1].decode()
        assert re.search(r'kube_elector_admissions_total\{result="invalid"\} 3\.0', text), text

        kept = connect(port)
        assert request(kept, "GET", "/healthz")[0].status == 200
        started = time.monotonic()
        podman("kill", "--signal=TERM", name, check=True)
        time.sleep(0.3)
        response, _ = request(kept, "GET", "/healthz")
        assert response.status == 200 and response.getheader("connection") == "close"
        assert int(podman("wait", name, timeout=60).stdout.split()[-1]) == 0, logs()
        assert time.monotonic() - started < 30
        clean(logs())
    finally:
        podman("rm", "--force", "--time=0", name)


def test_the_controller_runs_against_the_api_server_in_the_image(
    webhook_image: str, control_plane, tmp_path: Path  # noqa: ANN001
) -> None:
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "admin.kubeconfig")
    kubeconfig.chmod(0o644)
    health, name = free_port(), f"image-test-controller-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", f"--name={name}", "--network=host", *SECURITY,
           f"--volume={kubeconfig}:/etc/kube-elector/kubeconfig:ro", "--entrypoint=kube-elector-controller",
           webhook_image, "--kubeconfig=/etc/kube-elector/kubeconfig", "--namespace=default",
           f"--lease=image-test-{uuid.uuid4().hex[:6]}",
           f"--health-address=127.0.0.1:{health}", "--log-format=json", check=True)
    logs = lambda: (lambda d: d.stdout + d.stderr)(podman("logs", name))  # noqa: E731
    try:
        wait_for(lambda: '"leading":true' in logs().replace(" ", ""), 30, "the controller to lead", logs)
        wait_for(lambda: _status(health, "/readyz", tls=False) == 200, 30, "the controller's /readyz", logs)
        assert _status(health, "/metrics", tls=False) == 200
        podman("kill", "--signal=TERM", name, check=True)
        assert int(podman("wait", name, timeout=60).stdout.split()[-1]) == 0, logs()
        clean(logs())
    finally:
        podman("rm", "--force", "--time=0", name)


def _status(port: int, path: str, *, tls: bool = True) -> int:
    import http.client  # noqa: PLC0415

    try:
        conn = connect(port) if tls else http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        return request(conn, "GET", path)[0].status
    except OSError:
        return 0
