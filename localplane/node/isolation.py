"""A node's own network and mount namespaces, for every node but the host's (localplane.node.layout).

A sleeping holder process keeps the two namespaces alive (no /run/netns file to clean up); every
process of the node (containerd, the kubelet, kube-proxy, ctr) is started through `enter()` and so
shares them. The mount namespace gives the node private copies of the few host paths the kubelet and
containerd use whatever they are told (/var/lib/kubelet, /var/log/containers, /run/containerd, the CNI
cache in /var/lib/cni), so
two kubelets run on one machine; its mounts (overlay rootfs, volumes, pod netns) die with it.

The network: a veth from the host's nodes bridge to `eth0` in the namespace, the node's pod bridge
inside, a default route to the host, and on the host a route to the node's pod range. `cut_off()`
drops, inside the node only, every packet to the API server: the fault a partitioned node sees,
its pods still running and still reaching each other.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from localplane.node import layout as layout_
from localplane.node import machine
from localplane.process import component

__all__ = ["NodeNamespaces", "IsolationError", "PRIVATE_PATHS", "CUT_TABLE", "hold"]

# The CNI plugins' result cache (libcni's default /var/lib/cni) too: containerd has no setting for it.
PRIVATE_PATHS = (Path("/var/lib/kubelet"), Path("/var/log/containers"), Path("/run/containerd"), Path("/var/lib/cni"))
CUT_TABLE = ("inet", "kube-elector-cut")


class IsolationError(component.ComponentError):
    """The namespaces could not be made (unshare, nsenter or ip failed): the message says which."""


def hold(*unshare: str, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """A sleeping process in new namespaces (`unshare` options; a new network namespace always), returned
    once they exist: they live as long as it does, so killing it removes them (no /run/netns file)."""
    holder = subprocess.Popen(["unshare", *dict.fromkeys(("--net", *unshare)), "--", "sleep", "infinity"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    ours = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if holder.poll() is not None:
            raise IsolationError(f"unshare: {holder.stderr.read().decode().strip() if holder.stderr else ''}")
        try:
            if os.readlink(f"/proc/{holder.pid}/ns/net") != ours:
                return holder
        except OSError:
            pass
        time.sleep(0.01)
    holder.kill()
    holder.wait()
    raise IsolationError(f"unshare did not make new namespaces within {timeout:g} s")


class NodeNamespaces:
    """`NodeNamespaces(layout).start()`; `enter()` prefixes an argv; `stop()` kills all inside."""

    def __init__(self, layout: layout_.NodeLayout) -> None:
        if not layout.isolated:
            raise ValueError("node 0 runs in the host's namespaces")
        self.layout = layout
        self._holder: subprocess.Popen[bytes] | None = None
        self._mnt_ns = ""
        self._created: list[Path] = []
        self._routed = False

    # --- lifecycle

    def start(self) -> NodeNamespaces:
        """Namespaces, private paths, veth, pod bridge and routes; on failure, stop() what was made."""
        try:
            self._start_holder()
            for path in (*PRIVATE_PATHS, self.layout.run_dir):
                if not path.exists():
                    path.mkdir(parents=True, mode=0o700)
                    self._created.append(path)
            for path in PRIVATE_PATHS:
                self.run("mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(path))
            self._plumb()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Every process in the node's namespaces (then the holder), the host route and veth, the paths
        made on the host. Pods' own processes are in the node's cgroups: localplane.node.node kills them."""
        self.kill_processes()
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
            self._holder = None
        if self._routed:
            _ip("route", "del", self.layout.pod_cidr, check=False)
            self._routed = False
        _ip("link", "del", self.layout.uplink, check=False)  # its peer went with the namespace already
        for path in reversed(self._created):
            subprocess.run(["rm", "-rf", "--one-file-system", str(path)], capture_output=True, check=False)
        self._created = []

    # --- use

    @property
    def running(self) -> bool:
        return self._holder is not None and self._holder.poll() is None

    @property
    def pid(self) -> int:
        if self._holder is None:
            raise IsolationError(f"{self.layout.name}: namespaces not started")
        return self._holder.pid

    def enter(self) -> list[str]:
        """The argv prefix that runs a program in the node's namespaces (nsenter execs it: same pid)."""
        return ["nsenter", f"--target={self.pid}", "--net", "--mount", "--"]

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.enter(), *argv], capture_output=True, text=True, check=False, timeout=timeout)
        if check and done.returncode != 0:
            raise IsolationError(f"{self.layout.name}: {' '.join(argv)}: {done.stderr.strip()}")
        return done

    def cut_off(self, address: str) -> None:
        """Drop every packet from the node (its own processes and its pods) to address: the API server,
        unreachable from this node only. `heal()` undoes it."""
        family, table = CUT_TABLE
        rules = f"""
table {family} {table} {{
  chain output {{ type filter hook output priority filter - 20; policy accept; ip daddr {address} drop; }}
  chain forward {{ type filter hook forward priority filter - 20; policy accept; ip daddr {address} drop; }}
}}
"""
        done = subprocess.run([*self.enter(), "nft", "-f", "-"], input=rules, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise IsolationError(f"{self.layout.name}: nft (cut off): {done.stderr.strip()}")

    def heal(self) -> None:
        self.run("nft", "delete", "table", *CUT_TABLE, check=False)

    def pids(self) -> set[int]:
        """The processes in the node's mount namespace but the holder (containerd, kubelet, shims, ...)."""
        if not self._mnt_ns:
            return set()
        found = set()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(proc / "ns" / "mnt") == self._mnt_ns:
                        found.add(int(proc.name))
                except OSError:
                    continue
        return found - {self._holder.pid if self._holder else 0}

    def kill_processes(self) -> None:
        """SIGKILL every process of the node (not its pods), until none is left."""
        machine.kill_until_gone(self.pids)

    # --- parts

    def _start_holder(self) -> None:
        self._holder = hold("--net", "--mount", "--propagation", "private")
        self._mnt_ns = os.readlink(f"/proc/{self._holder.pid}/ns/mnt")

    def _plumb(self) -> None:
        node = self.layout
        _ip("link", "add", node.uplink, "type", "veth", "peer", "name", "eth0", "netns", str(self.pid))
        _ip("link", "set", node.uplink, "master", layout_.NODES_BRIDGE, "up")
        for argv in (("ip", "link", "set", "lo", "up"),
                     ("ip", "addr", "add", f"{node.uplink_ip}/24", "dev", "eth0"),
                     ("ip", "link", "set", "eth0", "up"),
                     ("ip", "route", "add", "default", "via", layout_.NODES_GATEWAY),
                     ("ip", "link", "add", node.pod_bridge, "type", "bridge"),
                     ("ip", "addr", "add", f"{node.node_ip}/24", "dev", node.pod_bridge),
                     ("ip", "link", "set", node.pod_bridge, "up"),
                     ("sysctl", "-qw", "net.ipv4.ip_forward=1")):
            self.run(*argv)
        _ip("route", "add", node.pod_cidr, "via", node.uplink_ip)
        self._routed = True


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise IsolationError(f"ip {' '.join(args)}: {done.stderr.strip()}")
