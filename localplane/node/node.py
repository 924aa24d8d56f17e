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

from localplane.process import binaries as binaries_
from localplane.controlplane import plane
from localplane.node import containerd, images, kubelet, machine, network
from localplane.process import component, ports

__all__ = ["Node", "NodeError", "NODE_NAME", "HOST_PATHS", "RUN_DIR"]

NODE_NAME = "kube-elector-node"
# Used by the kubelet or containerd whatever the config says (the device-plugin socket, the
# container log symlinks, the shims' sockets): one node per machine at a time.
# Unix socket paths are limited to 104 bytes, too short for a pytest workdir: containerd's
# sockets and the kubelet's root directory (which holds its sockets) live in RUN_DIR.
RUN_DIR = Path("/run/kube-elector-node")
HOST_PATHS = (Path("/var/lib/kubelet"), Path("/var/log/containers"), Path("/run/containerd"), RUN_DIR)


class NodeError(component.ComponentError):
    """The node could not start, or did not become Ready; the message ends with the log tail."""


class Node:
    """`Node(workdir, control_plane, net)`: `start_runtime()`, import the images (`ctr(...)`),
    `start_kubelet()`; then `stop()`. localplane.cluster does it in that order."""

    def __init__(self, workdir: Path, control_plane: plane.ControlPlane, net: network.NodeNetwork, *,
                 cluster_dns: str | None = None) -> None:
        self.workdir = workdir
        self.plane = control_plane
        self.net = net
        self.cluster_dns = cluster_dns
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
        (d / "config.toml").write_text(containerd.config(d, socket=self.containerd_socket,
                                                         cni_conf_dir=self.net.cni_conf_dir,
                                                         sandbox_image=images.names().pause))

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
        config.write_text(json.dumps(kubelet.config(
            d, ca_file=self.plane.ca_file, containerd_socket=self.containerd_socket,
            healthz_port=self._healthz_port, cluster_dns=self.cluster_dns), indent=2))
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
                if node.status_code == 200 and kubelet.is_ready(node.json()):
                    component.say(f"node {NODE_NAME} Ready in {time.monotonic() - started:.1f} s")
                    return
                time.sleep(0.2)
        assert self.kubelet is not None
        raise NodeError(f"node {NODE_NAME} not Ready after {timeout:.0f} s\n{self.kubelet.tail()}")



