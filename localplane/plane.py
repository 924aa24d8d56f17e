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
import base64
import json
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from certs import pki
from localplane import binaries as binaries_
from localplane import component, ports

__all__ = ["ControlPlane", "ControlPlaneError", "KubectlError", "CONTROLLERS"]

# Names as `kube-controller-manager --help` lists them (canonical since 1.28).
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "deployment-controller",
    "replicaset-controller",
    "root-ca-certificate-publisher-controller",
    # For a node: its Ready taint lifted, Service endpoints (the API server calls the webhook
    # through them), PodDisruptionBudget status, StatefulSets.
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "disruption-controller",
    "statefulset-controller",
)
SERVICE_CIDR = "10.0.0.0/24"
API_SERVICE_IP = "10.0.0.1"  # the `kubernetes` Service: pods reach and verify the API server there
_DAYS = 365


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
        ca = pki.make_ca("localplane-ca", days=_DAYS)
        self._ca = ca
        self.ca_pem = ca.cert_pem
        self.ca_file = ca.write(pki_dir, "ca")[0]
        self._pki_dir = pki_dir
        self._admin_cert, self._admin_key = pki.make_client_cert(
            ca, user="localplane-admin", groups=["system:masters"], days=_DAYS
        ).write(pki_dir, "admin")
        self.write_kubeconfig(self.kubeconfig)
        self._probe_ssl = ssl.create_default_context(cadata=self.ca_pem.decode())

        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = component.Component(
            "etcd",
            _etcd_argv(bins.etcd, workdir / "etcd", etcd_url, f"http://127.0.0.1:{etcd_peer_port}"),
            log_path=workdir / "etcd.log",
            probe=self._http_probe(f"{etcd_url}/readyz", verify=False),
        )
        apiserver = component.Component(
            "kube-apiserver",
            [
                *_apiserver_argv(bins.kube_apiserver, ca, pki_dir, etcd_url=etcd_url, port=api_port),
                *apiserver_args,
            ],
            log_path=workdir / "kube-apiserver.log",
            probe=self._http_probe(f"{self.server}/readyz", verify=self._probe_ssl),
        )
        # system:masters, not the components' own RBAC roles: see _kcm_argv.
        kcm_kubeconfig = self.client_kubeconfig(
            "kube-controller-manager", user="system:kube-controller-manager", groups=["system:masters"]
        )
        kcm = component.Component(
            "kube-controller-manager",
            _kcm_argv(bins.kube_controller_manager, ca, pki_dir, kubeconfig=kcm_kubeconfig, port=kcm_port),
            log_path=workdir / "kube-controller-manager.log",
            probe=self._http_probe(f"https://127.0.0.1:{kcm_port}/healthz", verify=self._probe_ssl),
        )
        parts = [etcd, apiserver, kcm]
        if scheduler:
            scheduler_kubeconfig = self.client_kubeconfig(
                "kube-scheduler", user="system:kube-scheduler", groups=["system:masters"]
            )
            parts.append(component.Component(
                "kube-scheduler",
                _scheduler_argv(bins.kube_scheduler, kubeconfig=scheduler_kubeconfig, port=scheduler_port),
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
        user = {"token": token} if token is not None else _cert_user(self._admin_cert, self._admin_key)
        path = Path(path)
        _write_json(path, self._kubeconfig_dict(user))
        return path

    def client_kubeconfig(self, name: str, *, user: str, groups: Sequence[str]) -> Path:
        """A kubeconfig `<workdir>/<name>.kubeconfig` with a client certificate for user in groups."""
        cert, key = pki.make_client_cert(self._ca, user=user, groups=list(groups), days=_DAYS).write(
            self._pki_dir, name
        )
        path = self.workdir / f"{name}.kubeconfig"
        _write_json(path, self._kubeconfig_dict(_cert_user(cert, key)))
        return path

    def dump_logs(self, lines: int = 40) -> str:
        """The last lines of each component's log, one titled block per component."""
        return "\n".join(
            f"----- {name} ({part.log_path}) -----\n{part.tail(lines)}"
            for name, part in self.components.items()
        )

    def _kubeconfig_dict(self, user: dict[str, str]) -> dict[str, Any]:
        # JSON is valid YAML, so kubectl and every client library read this file.
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "localplane",
                    "cluster": {"server": self.server, "certificate-authority-data": _b64(self.ca_pem)},
                }
            ],
            "users": [{"name": "localplane-user", "user": user}],
            "contexts": [
                {"name": "localplane", "context": {"cluster": "localplane", "user": "localplane-user"}}
            ],
            "current-context": "localplane",
        }

    @staticmethod
    def _http_probe(url: str, *, verify: ssl.SSLContext | bool) -> Callable[[], bool]:
        def probe() -> bool:
            try:
                return httpx.get(url, verify=verify, timeout=2.0, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        return probe


def _etcd_argv(etcd: Path, data_dir: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        str(etcd),
        "--name=localplane",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=localplane={peer_url}",
        "--unsafe-no-fsync",  # tests need speed, not durability
        "--log-level=warn",
    ]


def _apiserver_argv(binary: Path, ca: pki.KeyPair, pki_dir: Path, *, etcd_url: str, port: int) -> list[str]:
    cert, key = pki.make_serving_cert(
        ca,
        dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.cluster.local"],
        ip_addresses=["127.0.0.1", API_SERVICE_IP],
        days=_DAYS,
    ).write(pki_dir, "kube-apiserver")
    # The API server's identity towards kubelets (logs, exec, port-forward).
    kubelet_client_cert, kubelet_client_key = pki.make_client_cert(
        ca, user="kube-apiserver-kubelet-client", groups=["system:masters"], days=_DAYS
    ).write(pki_dir, "kube-apiserver-kubelet-client")
    signing = pki.make_rsa_keypair()
    sa_key, sa_pub = pki_dir / "sa.key", pki_dir / "sa.pub"
    sa_key.write_bytes(signing.key_pem)
    sa_key.chmod(0o600)
    sa_pub.write_bytes(signing.public_pem)
    return [
        str(binary),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",  # no default route here; without it the apiserver refuses to start
        f"--secure-port={port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--client-ca-file={pki_dir / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--kubelet-client-certificate={kubelet_client_cert}",
        f"--kubelet-client-key={kubelet_client_key}",
        "--kubelet-preferred-address-types=InternalIP",  # node names do not resolve here
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={sa_pub}",
        f"--service-account-signing-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",  # so that PodSecurity, not this flag, is what rejects a privileged pod
        f"--cert-dir={pki_dir / 'kube-apiserver-generated'}",
        # Loopback may not be an Endpoints address: the default reconciler would log an error every 10 s.
        "--endpoint-reconciler-type=none",
        # Without a grace period, SIGTERM waits for open watches (the KCM holds dozens) until
        # their timeout; with one, the apiserver ends them and a restart takes seconds.
        "--shutdown-watch-termination-grace-period=2s",
        "--profiling=false",
    ]


def _kcm_argv(binary: Path, ca: pki.KeyPair, pki_dir: Path, *, kubeconfig: Path, port: int) -> list[str]:
    cert, key = pki.make_serving_cert(
        ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], days=_DAYS
    ).write(pki_dir, "kube-controller-manager-serving")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        # No --authentication/authorization-kubeconfig: delegated auth wants the apiserver's front-proxy
        # CA (not configured here) and logs an error every few seconds; /healthz is always allowed anyway.
        # One identity in system:masters for all controllers, not kubeadm's per-controller
        # ServiceAccounts: a restarted apiserver serves requests before its RBAC cache is synced,
        # and the 403s it gives then push the KCM's watches into backoff for up to a minute.
        # system:masters is allowed without RBAC, so the KCM recovers as soon as the port opens.
        "--use-service-account-credentials=false",
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--root-ca-file={pki_dir / 'ca.crt'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
    ]


def _scheduler_argv(binary: Path, *, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",  # self-signed serving cert; /healthz is always allowed
        "--profiling=false",
    ]


def _cert_user(cert: Path, key: Path) -> dict[str, str]:
    return {"client-certificate-data": _b64(cert.read_bytes()), "client-key-data": _b64(key.read_bytes())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(document, indent=2) + "\n")
