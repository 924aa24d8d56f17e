"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
and, for a cluster with a node, kube-scheduler.

Without a scheduler Pods stay Pending, which is all an admission webhook and a
Lease-based elector need; `localplane.cluster` adds the scheduler and a real node.
Everything is the real thing: RBAC, PodSecurity, ServiceAccount and NodeRestriction
admission, TokenRequest, garbage collection. Ports are free loopback ports picked at
start; all files live in the workdir.
"""

from __future__ import annotations

import atexit

import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from certs import pki
from localplane.process import binaries as binaries_
from localplane.controlplane import apiserver, controller_manager, etcd, kubeconfig
from localplane.controlplane import scheduler as scheduler_
from localplane.process import component, ports

__all__ = ["ControlPlane", "ControlPlaneError", "KubectlError"]

class ControlPlaneError(component.ComponentError):
    """The plane could not start, or an API call it makes for you failed."""

class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() shows its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"

class ControlPlane:
    """Use `ControlPlane.start(workdir)`, as a context manager or followed by `.stop()`."""

    def __init__(
        self,
        workdir: Path,
        bins: binaries_.Binaries,
        *,
        apiserver_args: Sequence[str] = (),
        scheduler: bool = False,
    ):
        self.workdir = workdir
        self.binaries = bins
        etcd_port, etcd_peer_port, api_port, kcm_port, scheduler_port = ports.free_ports(5)
        self.api_port = api_port
        self.server = f"https://127.0.0.1:{api_port}"
        self.kubeconfig = workdir / "kubeconfig"
        pki_dir = workdir / "pki"
        ca = pki.make_ca("localplane-ca", days=apiserver.DAYS)
        self._ca = ca
        self.ca_pem = ca.cert_pem
        self.ca_file = ca.write(pki_dir, "ca")[0]
        self._pki_dir = pki_dir
        self._admin_cert, self._admin_key = pki.make_client_cert(
            ca, user="localplane-admin", groups=["system:masters"], days=apiserver.DAYS
        ).write(pki_dir, "admin")
        self.write_kubeconfig(self.kubeconfig)
        self._probe_ssl = ssl.create_default_context(cadata=self.ca_pem.decode())

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd_part = component.Component(
            "etcd",
            etcd.argv(bins.etcd, workdir / "etcd", etcd_url, f"http://127.0.0.1:{etcd_peer_port}"),
            log_path=workdir / "etcd.log",
            probe=self._http_probe(f"{etcd_url}/readyz", verify=False),
        )
        apiserver_part = component.Component(
            "kube-apiserver",
            [
                *apiserver.argv(bins.kube_apiserver, ca, pki_dir, etcd_url=etcd_url, port=api_port),
                *apiserver_args,
            ],
            log_path=workdir / "kube-apiserver.log",
            probe=self._http_probe(f"{self.server}/readyz", verify=self._probe_ssl),
        )
        # system:masters, not the components' own RBAC roles: see controller_manager.argv.
        kcm_kubeconfig = self.client_kubeconfig(
            "kube-controller-manager", user="system:kube-controller-manager", groups=["system:masters"]
        )
        kcm = component.Component(
            "kube-controller-manager",
            controller_manager.argv(bins.kube_controller_manager, ca, pki_dir, kubeconfig=kcm_kubeconfig, port=kcm_port),
            log_path=workdir / "kube-controller-manager.log",
            probe=self._http_probe(f"https://127.0.0.1:{kcm_port}/healthz", verify=self._probe_ssl),
        )
        parts = [etcd_part, apiserver_part, kcm]
        if scheduler:
            scheduler_kubeconfig = self.client_kubeconfig(
                "kube-scheduler", user="system:kube-scheduler", groups=["system:masters"]
            )
            parts.append(component.Component(
                "kube-scheduler",
                scheduler_.argv(bins.kube_scheduler, kubeconfig=scheduler_kubeconfig, port=scheduler_port),
                log_path=workdir / "kube-scheduler.log",
                probe=self._http_probe(f"https://127.0.0.1:{scheduler_port}/healthz", verify=False),
            ))
        self.components: dict[str, component.Component] = {c.name: c for c in parts}

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        bins: binaries_.Binaries | None = None,
        timeout: float = 120.0,
        apiserver_args: Sequence[str] = (),
        scheduler: bool = False,
    ) -> ControlPlane:
        """Generate the PKI and kubeconfigs in workdir, start the three components, wait until each is ready.

        apiserver_args are appended to kube-apiserver's flags: a scalar flag given again wins, a list
        flag (e.g. --authorization-mode) adds to ours and may then be rejected.

        Raises BinariesMissing (run `make binaries`) or ControlPlaneError with the failing component's log tail.
        """
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        plane = cls(workdir, bins or binaries_.find(), apiserver_args=apiserver_args, scheduler=scheduler)
        atexit.register(plane.stop)
        started = time.monotonic()
        try:
            for part in plane.components.values():
                part.start(timeout=timeout)
        except component.ComponentError as exc:
            plane.stop()
            raise ControlPlaneError(str(exc)) from None
        except BaseException:
            plane.stop()
            raise
        component.say(f"control plane ready at {plane.server} in {time.monotonic() - started:.1f} s")
        return plane

    def stop(self) -> None:
        """Stop the components in reverse order. Safe to call twice."""
        for part in reversed(self.components.values()):
            part.stop()
        atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ControlPlane {self.server} workdir={self.workdir}>"

    def client(self, *, timeout: float = 30.0) -> httpx.Client:
        """An httpx client authenticated as cluster admin (system:masters), base_url = server."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        context.load_cert_chain(self._admin_cert, self._admin_key)
        # trust_env=False: a proxy from the environment must never see loopback traffic.
        return httpx.Client(
            base_url=self.server,
            verify=context,
            timeout=timeout,
            trust_env=False,
            headers={"Accept": "application/json"},
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl as admin; raises KubectlError (with stderr) when check and it fails."""
        argv = [str(self.binaries.kubectl), f"--kubeconfig={self.kubeconfig}", *args]
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(done.returncode, argv, done.stdout, done.stderr)
        return done

    def token(
        self,
        namespace: str,
        service_account: str,
        *,
        seconds: int = 3600,
        audiences: list[str] | None = None,
    ) -> str:
        """A bound token for the ServiceAccount, from the TokenRequest API (as the kubelet would get one)."""
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences is not None:
            spec["audiences"] = audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        with self.client() as api:
            response = api.post(path, json=body)
        if response.is_error:
            raise ControlPlaneError(
                f"TokenRequest {namespace}/{service_account}: {response.status_code} {response.text}"
            )
        return str(response.json()["status"]["token"])

    def write_kubeconfig(self, path: Path, *, token: str | None = None) -> Path:
        """Write a kubeconfig for this server: for a bearer token, or for the admin client cert if token is None."""
        user = {"token": token} if token is not None else kubeconfig.cert_user(self._admin_cert, self._admin_key)
        path = Path(path)
        kubeconfig.write_json(path, kubeconfig.document(self.server, self.ca_pem, user))
        return path

    def client_kubeconfig(self, name: str, *, user: str, groups: Sequence[str], server: str = "") -> Path:
        """A kubeconfig `<workdir>/<name>.kubeconfig` with a client certificate for user in groups; server:
        another address that reaches the API server (a relay), verified as `kubernetes.default.svc`."""
        cert, key = pki.make_client_cert(self._ca, user=user, groups=list(groups), days=apiserver.DAYS).write(
            self._pki_dir, name
        )
        path = self.workdir / f"{name}.kubeconfig"
        kubeconfig.write_json(path, kubeconfig.document(
            server or self.server, self.ca_pem, kubeconfig.cert_user(cert, key),
            tls_server_name="kubernetes.default.svc" if server else ""))
        return path

    def dump_logs(self, lines: int = 40) -> str:
        """The last lines of each component's log, one titled block per component."""
        return "\n".join(
            f"----- {name} ({part.log_path}) -----\n{part.tail(lines)}"
            for name, part in self.components.items()
        )


    @staticmethod
    def _http_probe(url: str, *, verify: ssl.SSLContext | bool) -> Callable[[], bool]:
        def probe() -> bool:
            try:
                return httpx.get(url, verify=verify, timeout=2.0, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        return probe

