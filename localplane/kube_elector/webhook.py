"""Install kube-elector on the local plane from manifests/, as far as a plane without nodes allows.

`kubectl apply -k manifests/` creates everything (the Deployment's pods stay Pending: no
kubelet); the webhook itself runs here as a process with the Deployment's settings (the
ConfigMap) and its own ServiceAccount token, so the shipped RBAC is what it really has.
The only change to what was applied: clientConfig points at that process by URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from localplane.controlplane import plane as plane_
from localplane.kube_elector import register as webhooks
from localplane.process import binaries, ports

REPO = binaries.ROOT
MANIFESTS = REPO / "manifests"
NAMESPACE = "kube-elector"
SERVICE_ACCOUNT = "kube-elector-webhook"
CONFIGURATION = "kube-elector"
_MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"

MARKER_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "marker-", "annotations": {"elector.dev/inject": "true"}},
    "spec": {"containers": [{"name": "marker", "image": "marker"}]},
}


@dataclass
class InstalledWebhook:
    """The webhook process serving the local plane."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    def stop(self, *, drain: bool = True) -> None:
        """SIGTERM: the webhook drains (shutdown_drain_seconds) as in a rolling update. `drain=False`, for a
        fixture's teardown: a second SIGTERM stops it at once (webhook/draining.py)."""
        if self.process.poll() is None:
            self.process.terminate()
            if not drain:
                time.sleep(0.2)  # the first signal handled: the second one is not taken for it
                if self.process.poll() is None:
                    self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until this process itself answers /readyz (the API server may be reaching another replica)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the webhook exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", verify=False, timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the webhook at {self.url} not ready in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def apply_manifests(plane: plane_.ControlPlane) -> None:
    plane.kubectl("apply", "-k", str(MANIFESTS))


def point_at(plane: plane_.ControlPlane, url: str) -> None:
    """Replace each webhook's `service` reference with `url` + its path (keeps caBundle)."""
    with plane.client() as api:
        mwc = api.get(f"{_MWC}/{CONFIGURATION}").raise_for_status().json()
        ops = []
        for i, hook in enumerate(mwc["webhooks"]):
            client_config = hook["clientConfig"]
            path = (client_config.get("service") or {}).get("path") or "/mutate"
            new = {"url": url.rstrip("/") + path}
            if client_config.get("caBundle"):
                new["caBundle"] = client_config["caBundle"]
            ops.append({"op": "replace", "path": f"/webhooks/{i}/clientConfig", "value": new})
        api.patch(f"{_MWC}/{CONFIGURATION}", json=ops,
                  headers={"Content-Type": "application/json-patch+json"}).raise_for_status()


def start_webhook(
    plane: plane_.ControlPlane, workdir: Path, *, port: int, extra_args: Sequence[str] = ()
) -> InstalledWebhook:
    """Run `python -m webhook` with the shipped ConfigMap settings and the webhook's SA token."""
    workdir.mkdir(parents=True, exist_ok=True)
    configmap = yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())
    config = workdir / "webhook-config.yaml"
    config.write_text(configmap["data"]["config.yaml"])
    kubeconfig = plane.write_kubeconfig(
        workdir / "webhook.kubeconfig", token=plane.token(NAMESPACE, SERVICE_ACCOUNT, seconds=24 * 3600)
    )
    argv = [
        sys.executable, "-m", "webhook", "--config", str(config), "--kubeconfig", str(kubeconfig),
        "--host", "127.0.0.1", "--listen-port", str(port), "--namespace", NAMESPACE,
        "--cert-extra-ips", "127.0.0.1", "--cert-reload-seconds", "2", *extra_args,
    ]
    log_path = workdir / "webhook.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBE_ELECTOR_CONFIG", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    return InstalledWebhook(f"https://127.0.0.1:{port}", port, process, log_path, argv)


def wait_called(plane: plane_.ControlPlane, *, namespace: str = "default", timeout: float = 60.0) -> None:
    """Dry-run an opted-in marker pod until the API server shows the webhook's mutation."""

    def injected(answer: dict[str, Any]) -> bool:
        names = [c.get("name") for c in (answer.get("spec") or {}).get("initContainers") or []]
        names += [c.get("name") for c in (answer.get("spec") or {}).get("containers") or []]
        return "elector" in names

    webhooks.wait_until_called(plane, marker_pod=MARKER_POD, marker_namespace=namespace, is_called=injected,
                               timeout=timeout)


def install(
    plane: plane_.ControlPlane, workdir: Path, *, port: int | None = None, extra_args: Sequence[str] = ()
) -> InstalledWebhook:
    """apply -k manifests/, run the webhook (self-managed certs: it patches its own caBundle), wait until called.

    `port`: where the webhook listens (a free one if None).
    """
    port = port or ports.free_port()
    apply_manifests(plane)
    point_at(plane, f"https://127.0.0.1:{port}")
    hook = start_webhook(plane, workdir, port=port, extra_args=extra_args)
    try:
        wait_called(plane)
    except BaseException:
        hook.stop()
        raise RuntimeError(f"the webhook did not come up; its log:\n{hook.log_tail()}") from None
    return hook
