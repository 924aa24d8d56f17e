"""The cluster's network on the host: node 0's pod bridge, the bridge the other nodes plug into, and a
relay from it to the API server.

All of it is on this machine. Pods get addresses on a bridge this module makes (the CNI bridge
plugin plugs each pod's veth into it); the host, which is the node, reaches them there, which is
how the kubelet's probes and the API server's webhook calls arrive. The API server listens on
127.0.0.1 only; a relay on the node's bridge address (API_RELAY_PORT) forwards to it, and the
`kubernetes` Service's EndpointSlice names that relay, so a pod reaches the API server at the
Service IP through kube-proxy (localplane.node.kube_proxy) like on any cluster. Sysctls that the CNI plugin,
the kubelet and kube-proxy may change are saved first and restored.

The CNI bridge plugin turns IP forwarding on (pods route through the host). A fence, an nftables
table of our own, drops every forwarded packet that would leave the pod bridge for another
interface (or enter it from one) but the nodes bridge: pods reach the host and each other, on every
node, and nothing beyond. Nodes 1.. (localplane.node.isolation) route through the host over that
bridge; each has a pod bridge of its own in its namespace.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path
from typing import Any

from localplane.controlplane import apiserver
from localplane.node import layout as layout_
from localplane.process import component, tcpproxy

__all__ = ["NodeNetwork", "NetworkError", "POD_BRIDGE", "NODE_IP", "POD_CIDR", "API_RELAY_PORT", "SYSCTLS",
           "FENCE_TABLE", "kubernetes_endpoint_slice", "write_cni_config"]

_HOST_NODE = layout_.host_node()
POD_BRIDGE = _HOST_NODE.pod_bridge
NODE_IP = _HOST_NODE.node_ip  # the bridge's own address: node 0's InternalIP and its pods' gateway
POD_CIDR = _HOST_NODE.pod_cidr
API_RELAY_PORT = 6443  # on NODE_IP: the `kubernetes` Service's endpoint
FENCE_TABLE = ("inet", "kube-elector-node")
# Changed while a node runs: ip_forward by the CNI bridge plugin, the next three by the kubelet;
# the last two kube-proxy may set (it is told not to).
SYSCTLS = ("net/ipv4/ip_forward", "vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops",
           "net/ipv4/conf/all/route_localnet", "net/netfilter/nf_conntrack_max")


class NetworkError(RuntimeError):
    """The node network could not be set up (another node running here, or `ip` failed)."""


class NodeNetwork:
    """`NodeNetwork(workdir, api_port).start()`, then `.stop()`: bridges, CNI config, API relay."""

    def __init__(self, workdir: Path, *, api_port: int) -> None:
        self.workdir = workdir
        self.cni_conf_dir = workdir / "cni" / "net.d"
        self.ipam_dir = workdir / "cni" / "ipam"
        self._api_port = api_port
        self._saved_sysctls: dict[str, str] = {}
        self._made: list[str] = []
        self._relay: tcpproxy.TcpProxy | None = None

    def start(self) -> NodeNetwork:
        for bridge in (POD_BRIDGE, layout_.NODES_BRIDGE):
            if _link_exists(bridge):
                raise NetworkError(
                    f"bridge {bridge} already exists: a crashed local node left it (`ip link delete {bridge}`)"
                )
        for cidr in (layout_.CLUSTER_CIDR, apiserver.SERVICE_CIDR):
            if used := overlaps(cidr):
                raise NetworkError(f"{cidr} is already in use on this machine ({used}): the local node needs it "
                                   "for its pods and Services")
        self._saved_sysctls = {key: _read_sysctl(key) for key in SYSCTLS if _has_sysctl(key)}
        try:
            self._add_fence()
            self._add_bridge(POD_BRIDGE, f"{NODE_IP}/24")
            self._add_bridge(layout_.NODES_BRIDGE, f"{layout_.NODES_GATEWAY}/24")
            write_cni_config(self.cni_conf_dir, self.ipam_dir, _HOST_NODE)
            self._relay = tcpproxy.TcpProxy(
                [("127.0.0.1", self._api_port)], host=NODE_IP, port=API_RELAY_PORT
            ).start()
        except BaseException:
            self.stop()
            raise
        component.say(f"node network: {POD_BRIDGE} {NODE_IP}/24, API relay {NODE_IP}:{API_RELAY_PORT} "
                      f"-> 127.0.0.1:{self._api_port}")
        return self

    def stop(self) -> None:
        """Relay, bridges, sysctls: everything start() made or changed. Safe to call twice."""
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        for bridge in reversed(self._made):
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
        self._made.clear()
        subprocess.run(["nft", "delete", "table", *FENCE_TABLE], capture_output=True, check=False)
        for key, value in self._saved_sysctls.items():
            if _read_sysctl(key) != value:
                _write_sysctl(key, value)
        self._saved_sysctls = {}

    def _add_fence(self) -> None:
        family, table = FENCE_TABLE
        ours = f'"{POD_BRIDGE}", "{layout_.NODES_BRIDGE}"'
        rules = f"""
table {family} {table} {{
  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    iifname {{ {ours} }} oifname != {{ {ours} }} drop
    oifname {{ {ours} }} iifname != {{ {ours} }} drop
  }}
}}
"""
        done = subprocess.run(["nft", "-f", "-"], input=rules, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NetworkError(f"nft (the pod network's fence): {done.stderr.strip()}; `make packages` installs nftables")

    def _add_bridge(self, name: str, address: str) -> None:
        _ip("link", "add", name, "type", "bridge")
        self._made.append(name)
        _ip("addr", "add", address, "dev", name)
        _ip("link", "set", name, "up")



def write_cni_config(conf_dir: Path, ipam_dir: Path, node: layout_.NodeLayout) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "10-kube-elector.conflist").write_text(json.dumps(cni_config(ipam_dir, node), indent=2))


def cni_config(ipam_dir: Path, node: layout_.NodeLayout) -> dict[str, Any]:
    """The CNI network: Debian's bridge + host-local plugins, no masquerade (nothing leaves the host)."""
    return {
        "cniVersion": "1.0.0",
        "name": "kube-elector-local",
        "plugins": [
            {
                "type": "bridge",
                "bridge": node.pod_bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": node.pod_cidr, "gateway": node.node_ip, "rangeStart": node.first_pod_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def overlaps(cidr: str) -> str:
    """An address or route of this machine that overlaps cidr ('' if none)."""
    wanted = ipaddress.ip_network(cidr)
    for argv in (["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-4", "addr"]):
        for entry in json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout or "[]"):
            found = [entry.get("dst")] + [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])]
            for text in filter(None, found):
                if text in ("default", "broadcast") or not text[0].isdigit():
                    continue
                if ipaddress.ip_network(text, strict=False).overlaps(wanted):
                    return text
    return ""


def kubernetes_endpoint_slice() -> dict[str, Any]:
    """The `kubernetes` Service's endpoint: the relay (the API server's own reconciler is off, as it
    would advertise 127.0.0.1)."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes",
                                "endpointslice.kubernetes.io/managed-by": "localplane.kube-elector.dev"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": API_RELAY_PORT, "protocol": "TCP"}],
    }


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def _has_sysctl(key: str) -> bool:
    return Path(f"/proc/sys/{key}").exists()


def _read_sysctl(key: str) -> str:
    return Path(f"/proc/sys/{key}").read_text().strip()


def _write_sysctl(key: str, value: str) -> None:
    Path(f"/proc/sys/{key}").write_text(value + "\n")
