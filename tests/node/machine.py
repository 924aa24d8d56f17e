"""A snapshot of what a node could leave on this machine, to compare before and after a run.

Processes of our binaries (and of any pod), network links, mounts, cgroups, iptables rules,
the sysctls the kubelet and the CNI plugin change, and the host paths the kubelet and containerd
use whatever they are told. `left_as_found` wraps each cluster the suite starts (tests/conftest.py,
tests/helm/conftest.py): a cluster that leaves anything behind fails the suite at its teardown.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from localplane.node import layout, network, node

EXTRA_PATHS = ("/etc/cni", "/opt/cni", "/var/lib/cni", "/run/netns", "/var/lib/containerd", "/opt/containerd",
               "/etc/containerd", "/var/run/nri", "/var/lib/nri", "/etc/cdi", "/var/run/cdi", "/var/log/pods",
               "/etc/kubernetes")


def processes(workdir: Path) -> set[str]:
    """'<pid> <exe>' of every process in a pod's cgroup or naming this cluster's directories (every
    component's argv does, containerd's shims name its socket in RUN_DIR). Not "any process of a
    binary we built": another test session's control plane may run beside this one."""
    markers = (str(workdir).encode(), str(node.RUN_DIR).encode())
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
            cgroups = (proc / "cgroup").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if "kubepods" in cgroups or any(m in cmdline for m in markers):
            found.add(f"{proc.name} {exe}")
    return found


def iptables() -> str:
    """Every table's chains and rules, without counters (iptables and nftables: kube-proxy uses the latter)."""
    out = []
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False).stdout
    out += [re.sub(r"counter packets \d+ bytes \d+", "counter", line) for line in nft.splitlines()]
    for tool in ("iptables-save", "ip6tables-save"):
        try:
            text = subprocess.run([tool], capture_output=True, text=True, check=False).stdout
        except FileNotFoundError:
            continue
        out += [line.split(" [")[0] for line in text.splitlines() if line and not line.startswith("#")]
    return "\n".join(out)


def links() -> list[str]:
    """Network links, less those plugged into another tool's bridge (podman's containers come and go
    beside a test; a veth of ours is plugged into our bridge, or into none once it is gone)."""
    found = []
    for name in os.listdir("/sys/class/net"):
        try:
            master = os.path.basename(os.readlink(f"/sys/class/net/{name}/master"))
        except OSError:
            master = ""
        if not master or master in (network.POD_BRIDGE, layout.NODES_BRIDGE):
            found.append(name)
    return sorted(found)


def snapshot(workdir: Path) -> dict[str, object]:
    """Podman's own storage mounts are left out: image builds may run beside a test, and the node never
    uses podman's storage."""
    hierarchies = [Path(line.split()[1]) for line in Path("/proc/self/mounts").read_text().splitlines()
                   if line.split()[2] in ("cgroup", "cgroup2")]
    return {
        "processes": processes(workdir),
        "links": links(),
        "mounts": sorted({point for line in Path("/proc/self/mountinfo").read_text().splitlines()
                          if not (point := line.split()[4]).startswith("/var/lib/containers/")}),
        "cgroups": sorted(f"{h}/{d.name}" for h in hierarchies for d in h.iterdir() if d.is_dir()),
        "iptables": iptables(),
        "sysctls": {key: Path(f"/proc/sys/{key}").read_text().strip() for key in network.SYSCTLS},
        "paths": sorted(str(p) for p in [*node.HOST_PATHS, *map(Path, EXTRA_PATHS),
                                         *(layout.NodeLayout(i).run_dir for i in range(1, layout.MAX_NODES))]
                        if p.exists()),
    }


#: What a running node must show in a snapshot: an empty diff after it stops then means something.
SEEN_WHILE_RUNNING = ("processes", "links", "mounts", "cgroups")


@contextlib.contextmanager
def left_as_found(workdir: Path, take: Callable[[Path], dict[str, object]] = snapshot
                  ) -> Iterator[Callable[[], None]]:
    """Around a cluster's whole life: the machine after it stopped is as before it started. The body calls
    the function it is given once the cluster runs (a snapshot then must differ from the one before).
    Raises AssertionError naming what changed; nothing is checked when the body raised. `take`: how a
    snapshot is taken (a test of this check narrows it to what it made)."""
    before, during = take(workdir), {}
    yield lambda: during.update(take(workdir))
    after = take(workdir)
    unseen = [key for key in SEEN_WHILE_RUNNING if during and during[key] == before[key]]
    assert during and not unseen, f"the running cluster did not show in the snapshot: {unseen or 'not taken'}"
    changed = {key: (before[key], after[key]) for key in before if after[key] != before[key]}
    assert not changed, "the stopped cluster left the machine changed: " + "; ".join(
        f"{key}: before {old!r}, after {new!r}" for key, (old, new) in changed.items())
