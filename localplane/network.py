"""The node's network: a pod bridge, the `kubernetes` Service address and a relay to the API server.

All of it is on this machine. Pods get addresses on a bridge this module makes (the CNI bridge
plugin plugs each pod's veth into it); the host, which is the node, reaches them there, which is
how the kubelet's probes and the API server's webhook calls arrive. No NAT, no iptables rules:
pods talk only to the host. A pod reaches the API server at the `kubernetes` Service IP, held by a
second empty bridge, where a relay forwards to the API server on 127.0.0.1 (there is no
kube-proxy). Sysctls that the CNI plugin and the kubelet change are saved first and restored.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from localplane import component, tcpproxy

__all__ = ["NodeNetwork", "NetworkError", "POD_BRIDGE", "SERVICE_BRIDGE", "NODE_IP", "POD_CIDR",
           "API_SERVICE_IP", "SYSCTLS"]

POD_BRIDGE = "kelab0"
NODE_IP = "10.244.0.1"  # the bridge's own address: the node's InternalIP and every pod's gateway
POD_CIDR = "10.244.0.0/24"  # not 10.88/16: podman's default network uses it
SERVICE_BRIDGE = "kelabsvc0"
API_SERVICE_IP = "10.0.0.1"  # first address of plane.SERVICE_CIDR: the `kubernetes` Service
# Changed while a node runs: ip_forward by the CNI bridge plugin, the rest by the kubelet.
SYSCTLS = ("net/ipv4/ip_forward", "vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")


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
        for bridge in (POD_BRIDGE, SERVICE_BRIDGE):
            if _link_exists(bridge):
                raise NetworkError(
                    f"bridge {bridge} already exists: another local node is running on this machine "
                    f"(stop it first), or a crashed one left it (`ip link delete {bridge}`)"
                )
        self._saved_sysctls = {key: _read_sysctl(key) for key in SYSCTLS}
        try:
            self._add_bridge(POD_BRIDGE, f"{NODE_IP}/24")
            self._add_bridge(SERVICE_BRIDGE, f"{API_SERVICE_IP}/32")
            self._write_cni_config()
            self._relay = tcpproxy.TcpProxy(
                [("127.0.0.1", self._api_port)], host=API_SERVICE_IP, port=443
            ).start()
        except BaseException:
            self.stop()
            raise
        component.say(f"node network: {POD_BRIDGE} {NODE_IP}/24, {SERVICE_BRIDGE} {API_SERVICE_IP}:443 "
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
        for key, value in self._saved_sysctls.items():
            if _read_sysctl(key) != value:
                _write_sysctl(key, value)
        self._saved_sysctls = {}

    def _add_bridge(self, name: str, address: str) -> None:
        _ip("link", "add", name, "type", "bridge")
        self._made.append(name)
        _ip("addr", "add", address, "dev", name)
        _ip("link", "set", name, "up")

    def _write_cni_config(self) -> None:
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (self.cni_conf_dir / "10-kube-elector.conflist").write_text(json.dumps(cni_config(self.ipam_dir), indent=2))


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    """The CNI network: Debian's bridge + host-local plugins, no masquerade (nothing leaves the host)."""
    return {
        "cniVersion": "1.0.0",
        "name": "kube-elector-local",
        "plugins": [
            {
                "type": "bridge",
                "bridge": POD_BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP, "rangeStart": "10.244.0.10"}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def _read_sysctl(key: str) -> str:
    return Path(f"/proc/sys/{key}").read_text().strip()


def _write_sysctl(key: str, value: str) -> None:
    Path(f"/proc/sys/{key}").write_text(value + "\n")
