"""The kube-elector controller on the local plane, as a process with exactly the shipped rights.

`start_controller` applies the controller's part of manifests/ (its namespace, ServiceAccount,
ClusterRole + binding and the ValidatingAdmissionPolicies that limit what its account may write), gets a
real token of ServiceAccount kube-elector/kube-elector-controller from the TokenRequest API, and runs
`python -m controller` with a kubeconfig holding only that token: what the Deployment's pods would run
with (manifests/controller.yaml), minus a kubelet. The Deployment itself is not applied: the process is
the replica. Like localplane/kube_elector/webhook.py for the webhook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from localplane.controlplane import plane as plane_
from localplane.process import binaries, ports

__all__ = ["ControllerProcess", "start_controller", "apply_rbac", "MANIFESTS", "NAMESPACE", "SERVICE_ACCOUNT",
           "LEASE", "RBAC_FILES"]

REPO = binaries.ROOT
MANIFESTS = REPO / "manifests"
NAMESPACE = "kube-elector"
SERVICE_ACCOUNT = "kube-elector-controller"
LEASE = "kube-elector-controller"  # the controller's own election (manifests/controller.yaml's default)
# The controller's rights as shipped; the namespace first (the ServiceAccounts live in it).
RBAC_FILES = ("namespace.yaml", "serviceaccount.yaml", "rbac-controller.yaml", "validatingadmissionpolicy.yaml")
USERNAME = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


@dataclass
class ControllerProcess:
    """One `python -m controller` process (one replica) with the controller ServiceAccount's token."""

    identity: str
    health_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    kubeconfig: Path
    argv: list[str] = field(default_factory=list)

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (it releases its own Lease, so the next replica leads at once) and wait; the exit code.
        Killed if it does not exit within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash (its own Lease stays held until it expires)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def get(self, path: str, timeout: float = 1.0) -> httpx.Response:
        return httpx.get(f"{self.health_url}{path}", timeout=timeout, trust_env=False)

    def ready(self) -> bool:
        """/readyz answers 200: its pod and Lease informers have synced."""
        try:
            return self.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str) -> float | None:
        """A sample of its /metrics without labels (e.g. kube_elector_controller_leading), or None."""
        try:
            text = self.get("/metrics").text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def leading(self) -> bool:
        return self.metric("kube_elector_controller_leading") == 1.0

    def wait_ready(self, timeout: float = 30.0, *, leading: bool = True) -> float:
        """Seconds until /readyz answered 200 (and, with `leading`, until it leads its own election, so
        that it writes). Raises RuntimeError with its log tail if it exits or takes longer."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the controller exited ({self.process.returncode}):\n{self.log_tail()}")
            if self.ready() and (not leading or self.leading()):
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"the controller {self.identity} not ready{' and leading' if leading else ''} "
                           f"in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def apply_rbac(plane: plane_.ControlPlane) -> None:
    """The controller's namespace, ServiceAccount, ClusterRole(+Binding) and admission policies, as shipped."""
    for name in RBAC_FILES:
        plane.kubectl("apply", "-f", str(MANIFESTS / name))


def start_controller(
    plane: plane_.ControlPlane,
    workdir: Path,
    *,
    identity: str = "ctl-0",
    health_port: int | None = None,
    extra_args: Sequence[str] = (),
    wait: bool = True,
    timeout: float = 30.0,
) -> ControllerProcess:
    """Apply the controller's RBAC from manifests/, run `python -m controller` with a real token of
    kube-elector/kube-elector-controller, and (with `wait`) wait until it is ready and leads.

    Its log is `<workdir>/controller-<identity>.log`. Raises RuntimeError (with the log tail) if it
    does not come up; the process is stopped then.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    apply_rbac(plane)
    token = plane.token(NAMESPACE, SERVICE_ACCOUNT, seconds=24 * 3600)
    kubeconfig = plane.write_kubeconfig(workdir / f"controller-{identity}.kubeconfig", token=token)
    port = health_port or ports.free_port()
    argv = [
        sys.executable, "-m", "controller", "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE,
        "--lease", LEASE, "--identity", identity, "--health-address", f"127.0.0.1:{port}",
        "--log-format", "json", *extra_args,
    ]
    log_path = workdir / f"controller-{identity}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("KUBECONFIG", "POD_NAME", "POD_NAMESPACE", "POD_UID"):  # nothing but the flags
        env.pop(name, None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    controller = ControllerProcess(identity, f"http://127.0.0.1:{port}", process, log_path, kubeconfig, argv)
    if wait:
        try:
            controller.wait_ready(timeout)
        except BaseException:
            controller.stop()
            raise
    return controller
