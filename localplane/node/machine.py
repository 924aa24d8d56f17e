"""The machine-wide side of a local node: one node at a time, and removing what a node leaves.

The kubelet and containerd use some host paths and cgroups whatever they are told, and
containerd's shims and the pods' processes outlive them. `localplane.node.node` calls these on stop;
tests/node/machine.py checks the machine afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localplane.process import component

__all__ = ["MachineLock", "MachineBusy", "cgroup_hierarchies", "kill_cgroup_processes", "kill_by_binary",
           "kill_until_gone", "make_cgroup_root", "unmount_under", "remove_cgroups", "stale_cgroups"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


class MachineBusy(component.ComponentError):
    """Another local node kept this machine for longer than we were willing to wait."""


class MachineLock:
    """One node per machine: an abstract Unix socket bound while a node runs (no file, and the kernel
    frees it when the process dies). A second cluster waits for the first to stop instead of failing
    on its bridge or cgroups: test sessions on one machine take turns."""

    NAME = b"\0kube-elector-node"

    def __init__(self) -> None:
        self._sock: socket.socket | None = None

    def acquire(self, *, timeout: float) -> float:
        """Block until the node is ours; return the seconds waited. NodeError after timeout."""
        started = time.monotonic()
        next_note = started
        while True:
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.bind(self.NAME)
                self._sock = sock
                return time.monotonic() - started
            except OSError:
                sock.close()
            now = time.monotonic()
            if now - started > timeout:
                raise MachineBusy(f"another local node kept this machine for {timeout:.0f} s; stop it first")
            if now >= next_note:
                component.say("another local node runs on this machine; waiting for it to stop...")
                next_note = now + 30
            time.sleep(0.5)

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def cgroup_hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers and the unified one)."""
    hierarchies = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mountpoint, fstype, *_ = line.split()
        if fstype in ("cgroup", "cgroup2") and mountpoint.startswith(str(_CGROUP_ROOT)):
            hierarchies.append(Path(mountpoint))
    return hierarchies


def _kubepods_dirs(root: str = "/") -> list[Path]:
    """A node's cgroup directories, deepest first (so rmdir can go in order): /kubepods for the host's
    node (cgroup root '/'), the whole root for another (localplane.node.layout.cgroup_root)."""
    top_name = "kubepods" if root == "/" else root.strip("/")
    # os.walk, not rglob: cgroups vanish while we look (the kubelet removes them as pods stop).
    dirs = [Path(top) for h in cgroup_hierarchies() for top, _, _ in os.walk(h / top_name)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def make_cgroup_root(root: str) -> None:
    """A node's own cgroup root in every hierarchy (the kubelet wants it to exist), with the cpusets of
    the machine (a new cpuset cgroup has none, and no process could join it)."""
    for hierarchy in cgroup_hierarchies():
        made = hierarchy / root.strip("/")
        made.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / name).exists() and not (made / name).read_text().strip():
                (made / name).write_text((hierarchy / name).read_text())


def kill_until_gone(find: Callable[[], set[int]], *, timeout: float = 10.0) -> bool:
    """SIGKILL whatever `find()` returns until it returns nothing; False if some survived timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = find() - {os.getpid()}
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return False


def kill_cgroup_processes(root: str = "/") -> None:
    """Every process in a pod's cgroup of the node with this cgroup root (containers and sandboxes)."""
    if not kill_until_gone(lambda: {int(pid) for d in _kubepods_dirs(root) for pid in _read_lines(d / "cgroup.procs")}):
        component.say("some pod processes survived SIGKILL; their cgroups stay")


def kill_by_binary(binary: Path) -> None:
    """The processes running exactly this binary (containerd's shims outlive containerd)."""
    target = str(binary.resolve())

    def running() -> set[int]:
        pids = set()
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if os.readlink(proc / "exe") == target:
                        pids.add(int(proc.name))
                except OSError:
                    continue
        return pids

    kill_until_gone(running)


def unmount_under(root: Path) -> None:
    """Unmount every mount at or below root, deepest first (overlay rootfs, netns, tmpfs volumes)."""
    prefix = str(root.resolve())
    for _ in range(5):
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        mine = sorted({p for p in points if p == prefix or p.startswith(prefix + "/")}, key=len, reverse=True)
        if not mine:
            return
        for point in mine:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def remove_cgroups(root: str = "/", timeout: float = 10.0) -> bool:
    """rmdir every cgroup of the node with this cgroup root, deepest first; retried while the kernel still
    holds a cgroup whose last process just died (EBUSY). False if some are left after timeout."""
    deadline = time.monotonic() + timeout
    while dirs := _kubepods_dirs(root):
        for d in dirs:
            try:
                d.rmdir()
            except OSError:
                pass
        if time.monotonic() > deadline:
            component.say(f"cgroups left behind: {', '.join(str(d) for d in _kubepods_dirs(root))}")
            return False
        time.sleep(0.05)
    return True


def stale_cgroups(root: str = "/") -> list[Path]:
    """A node's cgroups that no kubelet uses: none of them holds a process (a crashed run left them)."""
    dirs = _kubepods_dirs(root)
    if any(_read_lines(d / "cgroup.procs") for d in dirs):
        return []
    return dirs


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []
