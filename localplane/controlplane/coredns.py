"""Cluster DNS: CoreDNS (tools/coredns-bin) answering for cluster.local, as the `kube-dns` Service.

It runs as a process on the host beside the API server, not as a pod: it needs no image, it is up
before the first kubelet starts (so every pod gets it in its resolv.conf), and a node fault in a test
(a node killed or cut off) never takes the cluster's DNS with it, so what a test sees is the fault, not
DNS failing behind it. It serves on the address pods reach the host at (`address`); the `kube-dns`
Service (DNS_SERVICE_IP, which the kubelets put in every pod's resolv.conf) has a hand-made
EndpointSlice naming that address, and kube-proxy carries pod traffic there. Nothing is forwarded
beyond cluster.local: no query leaves this machine. It reads Services and EndpointSlices with its own
identity (system:coredns) and the read-only rights of the upstream ClusterRole.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localplane.controlplane import plane as plane_
from localplane.process import component, ports

__all__ = ["CoreDNS", "DNS_SERVICE_IP", "CLUSTER_DOMAIN", "corefile"]

DNS_SERVICE_IP = "10.0.0.10"  # in the plane's SERVICE_CIDR; the kubelets' clusterDNS
CLUSTER_DOMAIN = "cluster.local"
_USER = "system:coredns"
_RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": _USER},
     "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                "verbs": ["list", "watch"]},
               {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": _USER},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": _USER},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": _USER}]},
]


class CoreDNS:
    """`CoreDNS(workdir, control_plane, address=...).start()`, then `.stop()`."""

    def __init__(self, workdir: Path, control_plane: plane_.ControlPlane, *, address: str) -> None:
        self.plane = control_plane
        self.address = address
        workdir.mkdir(parents=True, exist_ok=True)
        self._ready_port = ports.free_port()
        kubeconfig = control_plane.client_kubeconfig("coredns", user=_USER, groups=[])
        conf = workdir / "Corefile"
        conf.write_text(corefile(address=address, kubeconfig=kubeconfig, ready_port=self._ready_port))
        self.component = component.Component(
            "coredns",
            [str(control_plane.binaries.coredns), "-conf", str(conf)],
            log_path=workdir / "coredns.log",
            probe=self._ready,
        )

    def start(self, *, timeout: float = 60.0) -> CoreDNS:
        """Its rights, the kube-dns Service and its endpoint, then the process, ready once it has synced."""
        started = time.monotonic()
        with self.plane.client() as api:
            for document in _RBAC:
                kind = document["kind"].lower() + "s"
                api.post(f"/apis/rbac.authorization.k8s.io/v1/{kind}", json=document).raise_for_status()
            api.post("/api/v1/namespaces/kube-system/services", json=service()).raise_for_status()
            api.post("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
                     json=endpoint_slice(self.address)).raise_for_status()
        self.component.start(timeout=timeout)
        component.say(f"coredns serving {CLUSTER_DOMAIN} on {self.address}:53 (Service {DNS_SERVICE_IP}) "
                      f"in {time.monotonic() - started:.1f} s")
        return self

    def stop(self) -> None:
        self.component.stop()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self._ready_port}/ready", timeout=1) as reply:  # noqa: S310
                return reply.status == 200
        except (OSError, urllib.error.URLError):
            return False


def corefile(*, address: str, kubeconfig: Path, ready_port: int) -> str:
    """cluster.local and the reverse zones from the API server; no `forward`: nothing leaves the machine."""
    return f"""\
.:53 {{
    bind {address}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} localplane
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
    loadbalance
}}
"""


def service() -> dict[str, Any]:
    """kube-system/kube-dns without a selector: its endpoint is the process, not a pod."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": DNS_SERVICE_IP,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
    }


def endpoint_slice(address: str) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-host", "namespace": "kube-system",
                     "labels": {"kubernetes.io/service-name": "kube-dns",
                                "endpointslice.kubernetes.io/managed-by": "localplane.kube-elector.dev"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
    }
