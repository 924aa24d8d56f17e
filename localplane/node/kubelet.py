"""The kubelet's configuration for a node on this machine (cgroup v1, no image GC, no iptables chains),
and what counts as Ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localplane.node import layout

__all__ = ["config", "healthz_address", "is_ready"]


def config(d: Path, *, node: layout.NodeLayout, ca_file: Path, containerd_socket: Path, healthz_port: int,
           cluster_dns: str | None = None) -> dict[str, Any]:
    """KubeletConfiguration (v1beta1) for this machine; JSON is YAML, which the kubelet reads."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this machine has cgroup v1 (hybrid); the kubelet refuses it otherwise
        "cgroupDriver": "cgroupfs",  # PID 1 is not systemd
        "containerRuntimeEndpoint": f"unix://{containerd_socket}",
        "address": node.node_ip,
        "readOnlyPort": 0,
        # Where the host can ask: its loopback for node 0, the node's own address for the others.
        "healthzBindAddress": healthz_address(node),
        # Two kubelets on one machine never share a cgroup (localplane.node.layout).
        "cgroupRoot": node.cgroup_root,
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(d / "pod-logs"),
        "volumePluginDir": str(d / "volume-plugins"),
        # Local images cannot be pulled again: image GC must never delete them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A fuller disk must not evict test pods.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
                         "imagefs.available": "1%"},
        "failSwapOn": False,
        # Otherwise the kubelet leaves KUBE-FIREWALL & co. in the machine's iptables.
        "makeIPTablesUtilChains": False,
        "serializeImagePulls": False,
        # Pods get the cluster DNS (localplane.controlplane.coredns) and nothing of the host's resolv.conf.
        "resolvConf": "",
        "clusterDomain": "cluster.local",
        **({"clusterDNS": [cluster_dns]} if cluster_dns else {}),
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "maxPods": 60,
    }


def healthz_address(node: layout.NodeLayout) -> str:
    return node.node_ip if node.isolated else "127.0.0.1"


def is_ready(node: dict[str, Any]) -> bool:
    """Ready, and the not-ready taint lifted (the node-lifecycle controller does that a moment later)."""
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    tainted = any(t.get("key") == "node.kubernetes.io/not-ready" for t in node.get("spec", {}).get("taints", []))
    return ready and not tainted
