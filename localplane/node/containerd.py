"""containerd's configuration for a node on this machine: every path in the node's own directory but the
sockets, runc and the CNI plugins from Debian, and the settings this machine needs (why: next to each)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["config", "RUNC", "CNI_BIN"]

RUNC = "/usr/sbin/runc"
CNI_BIN = "/usr/lib/cni"


def config(d: Path, *, socket: Path, cni_conf_dir: Path, sandbox_image: str) -> str:
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
        BinaryName = "{RUNC}"
        Root = "{d / 'runc'}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{cni_conf_dir}"
    use_internal_loopback = true
"""
