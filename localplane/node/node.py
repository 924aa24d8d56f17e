"""A real node: kubelet + containerd + runc + CNI, registered with the local control plane.

The kubelet and containerd are ours (tools/build-binaries.sh); runc and the CNI plugins are
Debian's. The settings this machine needs, and why, are next to each one below. All state
lives in the workdir, except the few paths the kubelet and containerd use whatever they are
told (`HOST_PATHS`): those that did not exist before are removed on stop. Node 0 runs in the
host's namespaces; every other node in namespaces of its own (localplane.node.isolation), with its
own copies of those paths. `stop()` leaves no process, mount or cgroup behind; tests/node/machine.py
takes the before/after snapshot a test compares.
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
from localplane.node import containerd, images, isolation, kubelet, layout, machine, network
from localplane.process import component, ports

__all__ = ["Node", "NodeError", "NODE_NAME", "HOST_PATHS", "RUN_DIR"]

NODE_NAME = layout.host_node().name
# Used by the kubelet or containerd whatever the config says (the device-plugin socket, the
# container log symlinks, the shims' sockets): private copies for every node but the first.
# Unix socket paths are limited to 104 bytes, too short for a pytest workdir: containerd's
# sockets and the kubelet's root directory (which holds its sockets) live in RUN_DIR.
RUN_DIR = layout.host_node().run_dir
HOST_PATHS = (*isolation.PRIVATE_PATHS, RUN_DIR)


class NodeError(component.ComponentError):
    """The node could not start, or did not become Ready; the message ends with the log tail."""


class Node:
    """`Node(workdir, control_plane, layout)`: `start_runtime()`, import the images (`ctr(...)`),
    `start_kubelet()`; then `stop()`. localplane.cluster does it in that order. `kill()` is the node
    dying at once; `cut_off()`/`heal()` a partition from the API server (nodes 1.. only)."""

    def __init__(self, workdir: Path, control_plane: plane.ControlPlane, node: layout.NodeLayout, *,
                 cluster_dns: str | None = None) -> None:
        self.workdir = workdir
        self.plane = control_plane
        self.layout = node
        self.name = node.name
        self.cluster_dns = cluster_dns
        self.binaries: binaries_.Binaries = control_plane.binaries
        self.containerd_dir = workdir / "containerd"
        self.kubelet_dir = workdir / "kubelet"
        self.cni_conf_dir = workdir / "cni" / "net.d"
        self.containerd_socket = node.run_dir / "containerd.sock"
        self.namespaces = isolation.NodeNamespaces(node) if node.isolated else None
        self._created_host_paths: list[Path] = []
        self._healthz_port = 0
        self.containerd = component.Component(
            f"containerd {node.name}" if node.isolated else "containerd",
            self._containerd_argv(),
            log_path=workdir / "containerd.log",
            probe=self._containerd_ready,
        )
        self.kubelet: component.Component | None = None

    def enter(self) -> list[str]:
        """The argv prefix that runs a program on this node ([] for node 0, which is the host)."""
        return self.namespaces.enter() if self.namespaces and self.namespaces.running else []

    def api_kubeconfig(self, name: str, *, user: str, groups: list[str]) -> Path:
        """A kubeconfig for a component of this node: the API server itself from the host, its relay
        on node 0's address from the other nodes (a cut-off node loses it)."""
        if not self.layout.isolated:
            return self.plane.client_kubeconfig(name, user=user, groups=groups)
        return self.plane.client_kubeconfig(f"{name}-{self.name}", user=user, groups=groups,
                                            server=f"https://{network.NODE_IP}:{network.API_RELAY_PORT}")

    # --- lifecycle

    def start_runtime(self, *, timeout: float = 60.0) -> None:
        """Namespaces (nodes 1..), cgroups, containerd's config and containerd; on failure, stop() what started."""
        root = self.layout.cgroup_root
        if machine.stale_cgroups(root):  # empty ones, from a run that was killed: ours to remove
            machine.remove_cgroups(root)
        for hierarchy in machine.cgroup_hierarchies():
            mine = hierarchy / ("kubepods" if root == "/" else root.strip("/"))
            if mine.exists():
                raise NodeError(f"{mine} holds processes: another kubelet runs on this machine")
        if not self.layout.isolated:
            self._created_host_paths = [p for p in HOST_PATHS if not p.exists()]
        try:
            if self.namespaces is not None:
                self.namespaces.start()
                machine.make_cgroup_root(root)
            self.layout.run_dir.mkdir(mode=0o700, exist_ok=True)
            if self.layout.isolated:
                network.write_cni_config(self.cni_conf_dir, self.workdir / "cni" / "ipam", self.layout)
            self._write_containerd_config()
            self.containerd.argv = self._containerd_argv()  # now in the node's namespaces
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
        root = self.layout.cgroup_root
        steps = [
            lambda: self.kubelet.stop() if self.kubelet is not None else None,
            lambda: machine.kill_cgroup_processes(root),
            self.containerd.stop,
            # The shims outlive containerd: on node 0 every shim of ours (the other nodes stop first),
            # on the others whatever runs in the node's namespaces.
            (self.namespaces.stop if self.namespaces is not None
             else lambda: machine.kill_by_binary(self.binaries.containerd_shim_runc_v2)),
            lambda: machine.unmount_under(self.workdir),
            lambda: machine.unmount_under(self.layout.run_dir),
            lambda: machine.remove_cgroups(root),
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

    def kill(self) -> None:
        """The node dies at once: SIGKILL to the kubelet, containerd, the shims and every pod's processes
        (the namespaces stay, empty, until stop())."""
        if self.kubelet is not None:
            self.kubelet.kill()
        self.containerd.kill()
        if self.namespaces is not None:
            self.namespaces.kill_processes()
        else:
            machine.kill_by_binary(self.binaries.containerd_shim_runc_v2)
        machine.kill_cgroup_processes(self.layout.cgroup_root)

    def cut_off(self) -> None:
        """Partition the node from the API server (its kubelet and its pods alike); `heal()` ends it."""
        if self.namespaces is None:
            raise NodeError(f"{self.name} is the host: only nodes in namespaces of their own can be cut off")
        self.namespaces.cut_off(network.NODE_IP)

    def heal(self) -> None:
        if self.namespaces is not None:
            self.namespaces.heal()

    def ctr(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ctr on this node, in containerd's Kubernetes namespace (k8s.io)."""
        argv = [*self.enter(), str(self.binaries.ctr), "--address", str(self.containerd_socket),
                "--namespace", "k8s.io", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)

    def dump_logs(self, lines: int = 40) -> str:
        parts = [self.containerd, *([self.kubelet] if self.kubelet else [])]
        return "\n".join(f"----- {p.name} ({p.log_path}) -----\n{p.tail(lines)}" for p in parts)

    # --- containerd

    def _containerd_argv(self) -> list[str]:
        return [*self.enter(), str(self.binaries.containerd), "--config", str(self.containerd_dir / "config.toml")]

    def _write_containerd_config(self) -> None:
        d = self.containerd_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.toml").write_text(containerd.config(d, socket=self.containerd_socket,
                                                         cni_conf_dir=self.cni_conf_dir,
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
            d, node=self.layout, ca_file=self.plane.ca_file, containerd_socket=self.containerd_socket,
            healthz_port=self._healthz_port, cluster_dns=self.cluster_dns), indent=2))
        kubeconfig = self.api_kubeconfig("kubelet", user=f"system:node:{self.name}", groups=["system:nodes"])
        return component.Component(
            f"kubelet {self.name}" if self.layout.isolated else "kubelet",
            [
                *self.enter(),
                str(self.binaries.kubelet),
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.layout.run_dir / 'kubelet'}",
                f"--cert-dir={d / 'pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.layout.node_ip}",
                "--v=1",
            ],
            log_path=self.workdir / "kubelet.log",
            probe=self._kubelet_healthy,
        )

    def _kubelet_healthy(self) -> bool:
        try:
            with socket.create_connection((kubelet.healthz_address(self.layout), self._healthz_port),
                                          timeout=1) as sock:
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
                node = api.get(f"/api/v1/nodes/{self.name}")
                if node.status_code == 200 and kubelet.is_ready(node.json()):
                    component.say(f"node {self.name} Ready in {time.monotonic() - started:.1f} s")
                    return
                time.sleep(0.2)
        assert self.kubelet is not None
        raise NodeError(f"node {self.name} not Ready after {timeout:.0f} s\n{self.kubelet.tail()}")



