"""kube-proxy on the node, in nftables mode: ClusterIP traffic is really proxied.

Its rules live in two nftables tables of its own (`ip kube-proxy`, `ip6 kube-proxy`), which
`stop()` deletes (with `kube-proxy --cleanup`, then by name if any is left). It masquerades all
Service traffic (`masqueradeAll`): this node's bridge has no br_netfilter, so a reply from a pod
to a pod on the same bridge must come back through the host to be un-NATed. Conntrack sysctls
are left as they are (all limits 0 = do not touch), NodePorts only on the node's bridge address.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from localplane.controlplane import plane
from localplane.node import kubelet, layout
from localplane.process import component, ports

__all__ = ["KubeProxy", "NFT_TABLES"]

NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))


class KubeProxy:
    """`KubeProxy(workdir, control_plane, node).start()`, then `.stop()`. For a node in namespaces of its
    own, `enter` is the argv prefix that runs a program there, and `kubeconfig` reaches the API server
    from there (localplane.node.node)."""

    def __init__(self, workdir: Path, control_plane: plane.ControlPlane, node: layout.NodeLayout, *,
                 enter: list[str] | None = None, kubeconfig: Path | None = None) -> None:
        self.workdir = workdir
        self.binary = control_plane.binaries.kube_proxy
        self._enter = enter or []
        workdir.mkdir(parents=True, exist_ok=True)
        healthz_port, metrics_port = ports.free_ports(2)
        kubeconfig = kubeconfig or control_plane.client_kubeconfig("kube-proxy", user="system:kube-proxy", groups=[])
        config = workdir / "kube-proxy.json"
        config.write_text(json.dumps(proxy_config(kubeconfig, node=node, healthz_port=healthz_port,
                                                  metrics_port=metrics_port), indent=2))
        address = kubelet.healthz_address(node)
        self.component = component.Component(
            f"kube-proxy {node.name}",
            [*self._enter, str(self.binary), f"--config={config}", "--v=1"],
            log_path=workdir / "kube-proxy.log",
            probe=lambda: _healthy(address, healthz_port),
        )

    def start(self, *, timeout: float = 60.0) -> KubeProxy:
        self.component.start(timeout=timeout)
        return self

    def stop(self) -> None:
        """Stop it, then remove its rules: `kube-proxy --cleanup`, and any table still there by name."""
        self.component.stop()
        subprocess.run([*self._enter, str(self.binary), "--cleanup", "--v=0"], capture_output=True, check=False,
                       timeout=60)
        for family, table in NFT_TABLES:
            subprocess.run([*self._enter, "nft", "delete", "table", family, table], capture_output=True, check=False)


def proxy_config(kubeconfig: Path, *, node: layout.NodeLayout, healthz_port: int, metrics_port: int) -> dict[str, Any]:
    """KubeProxyConfiguration (v1alpha1); JSON is YAML, which kube-proxy reads."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node.name,
        "bindAddress": node.node_ip,
        "healthzBindAddress": f"{kubelet.healthz_address(node)}:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": layout.CLUSTER_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [f"{node.node_ip}/32"],
        # kube-proxy's defaults: rules follow a change at once, then at most once a second (0 = default).
        "nftables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "1s"},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
                      "udpTimeout": "0s", "udpStreamTimeout": "0s"},
    }


def _healthy(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(200)
    except OSError:
        return False
