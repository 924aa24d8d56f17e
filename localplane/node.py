"""A real node: kubelet + containerd + runc + CNI, registered with the local control plane.

The kubelet and containerd are ours (tools/build-binaries.sh); runc and the CNI plugins are
Debian's. The settings this machine needs, and why, are next to each one below. All state
lives in the workdir, except the few paths the kubelet and containerd use whatever they are
told (`HOST_PATHS`): those that did not exist before are removed on stop. `stop()` leaves no
process, mount or cgroup behind; tests/node/machine.py takes the before/after snapshot a test
compares.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from localplane import binaries as binaries_
from localplane import component, images, machine, network, plane, ports

__all__ = ["Node", "NodeError", "NODE_NAME", "HOST_PATHS", "RUN_DIR"]

NODE_NAME = "kube-elector-node"
# Used by the kubelet or containerd whatever the config says (the device-plugin socket, the
# container log symlinks, the shims' sockets): one node per machine at a time.
# Unix socket paths are limited to 104 bytes, too short for a pytest workdir: containerd's
# sockets and the kubelet's root directory (which holds its sockets) live in RUN_DIR.
RUN_DIR = Path("/run/kube-elector-node")
HOST_PATHS = (Path("/var/lib/kubelet"), Path("/var/log/containers"), Path("/run/containerd"), RUN_DIR)
_RUNC = "/usr/sbin/runc"
_CNI_BIN = "/usr/lib/cni"


class NodeError(component.ComponentError):
    """The node could not start, or did not become Ready; the message ends with the log tail."""


class Node:
    """`Node(workdir, control_plane, net)`: `start_runtime()`, import the images (`ctr(...)`),
    `start_kubelet()`; then `stop()`. localplane.cluster does it in that order."""

    def __init__(self, workdir: Path, control_plane: plane.ControlPlane, net: network.NodeNetwork) -> None:
        self.workdir = workdir
        self.plane = control_plane
        self.net = net
        self.binaries: binaries_.Binaries = control_plane.binaries
        self.containerd_dir = workdir / "containerd"
        self.kubelet_dir = workdir / "kubelet"
        self.containerd_socket = RUN_DIR / "containerd.sock"
        self._created_host_paths: list[Path] = []
        self._healthz_port = 0
        self.containerd = component.Component(
            "containerd",
            [str(self.binaries.containerd), "--config", str(self.containerd_dir / "config.toml")],
            log_path=workdir / "containerd.log",
            probe=self._containerd_ready,
        )
        self.kubelet: component.Component | None = None

    # --- lifecycle

    def start_runtime(self, *, timeout: float = 60.0) -> None:
        """Write containerd's config and start it; on failure, stop() what started."""
        if machine.stale_cgroups():  # empty ones, from a run that was killed: ours to remove
            machine.remove_cgroups()
        for hierarchy in machine.cgroup_hierarchies():
            if (hierarchy / "kubepods").exists():
                raise NodeError(f"{hierarchy / 'kubepods'} holds processes: another kubelet runs on this machine")
        self._created_host_paths = [p for p in HOST_PATHS if not p.exists()]
        try:
            RUN_DIR.mkdir(mode=0o700, exist_ok=True)
            self._write_containerd_config()
            self.containerd.start(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def start_kubelet(self, *, timeout: float = 60.0) -> None:
        """Start the kubelet and wait until the Node is Ready and untainted; on failure, stop()."""
        try:
            self.kubelet = self._kubelet_component()
            self.kubelet.start(timeout=timeout)
            self._wait_node_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the kubelet, every pod's processes, containerd and its shims; unmount and remove the rest.

        Every step runs even if an earlier one failed; the first error is raised at the end.
        """
        steps = [
            lambda: self.kubelet.stop() if self.kubelet is not None else None,
            machine.kill_cgroup_processes,
            self.containerd.stop,
            lambda: machine.kill_by_binary(self.binaries.containerd_shim_runc_v2),
            lambda: machine.unmount_under(self.workdir),
            lambda: machine.unmount_under(RUN_DIR),
            machine.remove_cgroups,
            *[lambda path=path: shutil.rmtree(path, ignore_errors=True) for path in self._created_host_paths],
        ]
        errors = []
        for run in steps:
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up, report the first error
                errors.append(exc)
        self._created_host_paths = []
        if errors:
            raise NodeError(f"node cleanup: {errors[0]!r}") from errors[0]

    def ctr(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ctr in containerd's Kubernetes namespace (k8s.io)."""
        argv = [str(self.binaries.ctr), "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)

    def dump_logs(self, lines: int = 40) -> str:
        parts = [self.containerd, *([self.kubelet] if self.kubelet else [])]
        return "\n".join(f"----- {p.name} ({p.log_path}) -----\n{p.tail(lines)}" for p in parts)

    # --- containerd

    def _write_containerd_config(self) -> None:
        d = self.containerd_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.toml").write_text(containerd_config(d, socket=self.containerd_socket,
                                                         cni_conf_dir=self.net.cni_conf_dir,
                                                         sandbox_image=_sandbox_image()))

    def _containerd_ready(self) -> bool:
        if not self.containerd_socket.exists():
            return False
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.containerd_socket))
            except OSError:
                return False
        return self.ctr("version", check=False, timeout=5).returncode == 0

    # --- kubelet

    def _kubelet_component(self) -> component.Component:
        self._healthz_port = ports.free_port()
        d = self.kubelet_dir
        d.mkdir(parents=True, exist_ok=True)
        config = d / "config.json"
        config.write_text(json.dumps(kubelet_config(
            d, ca_file=self.plane.ca_file, containerd_socket=self.containerd_socket,
            healthz_port=self._healthz_port), indent=2))
        kubeconfig = self.plane.client_kubeconfig(
            "kubelet", user=f"system:node:{NODE_NAME}", groups=["system:nodes"]
        )
        return component.Component(
            "kubelet",
            [
                str(self.binaries.kubelet),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={RUN_DIR / 'kubelet'}",
                f"--cert-dir={d / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={network.NODE_IP}",
                "--v=1",
            ],
            log_path=self.workdir / "kubelet.log",
            probe=self._kubelet_healthy,
        )

    def _kubelet_healthy(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self._healthz_port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                return b" 200 " in sock.recv(200)
        except OSError:
            return False

    def _wait_node_ready(self, timeout: float) -> None:
        started = time.monotonic()
        with self.plane.client() as api:
            while time.monotonic() - started < timeout:
                assert self.kubelet is not None
                if not self.kubelet.running:
                    raise NodeError(f"kubelet exited\n{self.kubelet.tail()}")
                node = api.get(f"/api/v1/nodes/{NODE_NAME}")
                if node.status_code == 200 and _is_ready(node.json()):
                    component.say(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f} s")
                    return
                time.sleep(0.2)
        assert self.kubelet is not None
        raise NodeError(f"node {NODE_NAME} not Ready after {timeout:.0f} s\n{self.kubelet.tail()}")


def containerd_config(d: Path, *, socket: Path, cni_conf_dir: Path, sandbox_image: str) -> str:
    """containerd 2.3 config (version 4, as `containerd config default` prints it); every path but the
    sockets inside d."""
    return f"""\
version = 4
root = "{d / 'root'}"
state = "{d / 'state'}"
temp = "{d / 'tmp'}"
imports = []
# NRI and the snapshotters this node does not use stay off; nothing is created under /var/run/nri.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs", "io.containerd.mount-handler.v1.erofs"]

[plugins.'io.containerd.server.v1.grpc']
  address = "{socket}"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "{socket}.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "{d / 'opt'}"
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = "{d / 'opt' / 'image-verifier'}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{sandbox_image}"

[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE: without this, the kubelet's oom_score_adj -998 for the
  # sandbox fails every sandbox ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{_RUNC}"
        Root = "{d / 'runc'}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{_CNI_BIN}"]
    conf_dir = "{cni_conf_dir}"
    use_internal_loopback = true
"""


def kubelet_config(d: Path, *, ca_file: Path, containerd_socket: Path, healthz_port: int) -> dict[str, Any]:
    """KubeletConfiguration (v1beta1) for this machine; JSON is YAML, which the kubelet reads."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this machine has cgroup v1 (hybrid); the kubelet refuses it otherwise
        "cgroupDriver": "cgroupfs",  # PID 1 is not systemd
        "containerRuntimeEndpoint": f"unix://{containerd_socket}",
        "address": network.NODE_IP,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
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
        "resolvConf": "",  # no cluster DNS here; pods get no resolv.conf entries
        "clusterDomain": "cluster.local",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "maxPods": 60,
    }


def _sandbox_image() -> str:
    return images.names().pause


def _is_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    tainted = any(t.get("key") == "node.kubernetes.io/not-ready" for t in node.get("spec", {}).get("taints", []))
    return ready and not tainted
