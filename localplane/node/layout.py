"""Where each node of a local cluster lives: its name, addresses, pod range, run directory, cgroup root.

Node 0 is the machine itself (its pod bridge and its kubelet in the host's namespaces), as a one-node
cluster has always been. Every further node has network and mount namespaces of its own
(localplane.node.isolation), joined to the host by a veth on the nodes' bridge: the host routes each
node's pod range to it, so pods on different nodes reach each other, the API server and cluster DNS
through the host, and a node can be cut off by dropping packets in its own namespace only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["NodeLayout", "CLUSTER_CIDR", "NODES_BRIDGE", "NODES_GATEWAY", "MAX_NODES", "host_node"]

CLUSTER_CIDR = "10.244.0.0/16"  # every node's pod range is a /24 in it (not 10.88/16: podman's)
NODES_BRIDGE = "kelabn"  # on the host: the veths of nodes 1.. are plugged into it
NODES_GATEWAY = "10.244.254.1"  # the host on that bridge (10.244.254.0/24 holds no pods)
MAX_NODES = 8


@dataclasses.dataclass(frozen=True)
class NodeLayout:
    """One node's names and addresses, all derived from its index (0 = the host's own node)."""

    index: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < MAX_NODES:
            raise ValueError(f"node index {self.index}: a local cluster has 1 to {MAX_NODES} nodes")

    @property
    def isolated(self) -> bool:
        """In namespaces of its own (every node but the first)."""
        return self.index > 0

    @property
    def name(self) -> str:
        return "kube-elector-node" if self.index == 0 else f"kube-elector-node-{self.index + 1}"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def node_ip(self) -> str:
        """The pod bridge's own address: the node's InternalIP and its pods' gateway."""
        return f"10.244.{self.index}.1"

    @property
    def first_pod_ip(self) -> str:
        return f"10.244.{self.index}.10"

    @property
    def pod_bridge(self) -> str:
        return "kelab0" if self.index == 0 else f"kelab{self.index}"

    @property
    def uplink(self) -> str:
        """The host's end of the node's veth (on NODES_BRIDGE); the node's end is `eth0` in its namespace."""
        return f"kelabv{self.index}"

    @property
    def uplink_ip(self) -> str:
        """The node's address on NODES_BRIDGE, where the host routes pod_cidr."""
        return f"10.244.254.{self.index + 1}"

    @property
    def run_dir(self) -> Path:
        """Short paths for sockets (Unix socket paths are limited to 104 bytes, too short for a pytest
        workdir): containerd's sockets and the kubelet's root directory."""
        return Path("/run/kube-elector-node" if self.index == 0 else f"/run/kube-elector-node-{self.index + 1}")

    @property
    def cgroup_root(self) -> str:
        """The kubelet's cgroupRoot: '/' for the host's node (its pods under /kubepods), one of its own
        for the others, so two kubelets never share a cgroup."""
        return "/" if self.index == 0 else f"/{self.name}"


def host_node() -> NodeLayout:
    return NodeLayout(0)
