"""Finding the local cluster's binaries: etcd, the Kubernetes components, kubectl, containerd.

The wanted versions come from the build recipe (tools/build-binaries.sh, pinned by
tools/*-bin/go.mod), so there is one place to bump them. A control-plane binary found in
`$KUBEBUILDER_ASSETS` or on PATH is used only if its minor version matches; otherwise the
recipe's cache directory is used. The node's binaries (kubelet, containerd and its shim, ctr)
come from the cache only: a distribution's containerd on PATH is another major version.
So do helm (charts/kube-elector and tests/helm/), whose major version the chart is tested with, and
coredns (the cluster DNS).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["Binaries", "BinariesMissing", "find", "ensure", "BUILD_SCRIPT"]

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tools" / "build-binaries.sh"

_K8S_NAMES = ("kube-apiserver", "kube-controller-manager", "kubectl", "kube-scheduler")
_NODE_K8S_NAMES = ("kubelet", "kube-proxy")
_CONTAINERD_NAMES = ("containerd", "containerd-shim-runc-v2", "ctr")
_HELM_NAMES = ("helm",)
_COREDNS_NAMES = ("coredns",)


class BinariesMissing(RuntimeError):
    """A control-plane binary of the wanted version is not installed: run `make binaries`."""


@dataclasses.dataclass(frozen=True)
class Binaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    kube_scheduler: Path
    kubelet: Path
    kube_proxy: Path
    containerd: Path
    containerd_shim_runc_v2: Path
    ctr: Path
    helm: Path
    coredns: Path


def find() -> Binaries:
    """Locate every binary; raise BinariesMissing (naming what is missing) otherwise."""
    k8s_dir, etcd_dir, containerd_dir, helm_dir, coredns_dir = _cache_dirs()
    k8s_minor = _minor(k8s_dir.name.removeprefix("k8s-"))  # "v1.36"
    etcd_minor = _minor(etcd_dir.name.removeprefix("etcd-").removeprefix("v"))  # "3.6"
    found: dict[str, Path] = {}
    missing: list[str] = []
    wanted = {name: (k8s_dir, k8s_minor, rf"\b{re.escape(k8s_minor)}\.\d+") for name in _K8S_NAMES}
    wanted["etcd"] = (etcd_dir, etcd_minor, rf"etcd Version: {re.escape(etcd_minor)}\.\d+")
    for name, (cache_dir, minor, pattern) in wanted.items():
        path = next((p for p in _candidates(name, cache_dir) if re.search(pattern, _version(p))), None)
        if path is None:
            missing.append(f"{name} {minor}.x")
        else:
            found[name.replace("-", "_")] = path
    cached = [(k8s_dir, name) for name in _NODE_K8S_NAMES] + [(containerd_dir, n) for n in _CONTAINERD_NAMES]
    cached += [(helm_dir, name) for name in _HELM_NAMES] + [(coredns_dir, name) for name in _COREDNS_NAMES]
    for cache_dir, name in cached:
        path = cache_dir / name
        if os.access(path, os.X_OK):
            found[name.replace("-", "_")] = path
        else:
            missing.append(str(path))
    if missing:
        raise BinariesMissing(
            f"missing binaries: {', '.join(missing)} "
            f"(looked in $KUBEBUILDER_ASSETS, PATH, {k8s_dir}, {etcd_dir}, {containerd_dir}, {helm_dir}, {coredns_dir}); run `make binaries`"
        )
    return Binaries(**found)


def ensure() -> Binaries:
    """find(), building the binaries first with the recipe if any is missing (minutes when cold)."""
    try:
        return find()
    except BinariesMissing as exc:
        print(
            f"[localplane] {exc}; building with {BUILD_SCRIPT.relative_to(ROOT)}", file=sys.stderr, flush=True
        )
    # The recipe logs to stderr; inherit it so progress streams to the terminal.
    result = subprocess.run([str(BUILD_SCRIPT)], cwd=ROOT, stdout=sys.stderr, check=False)
    if result.returncode != 0:
        raise BinariesMissing(
            f"{BUILD_SCRIPT} failed with exit code {result.returncode}; see its output above"
        )
    _version.cache_clear()
    return find()


def _cache_dirs() -> tuple[Path, Path, Path, Path, Path]:
    out = subprocess.run(
        [str(BUILD_SCRIPT), "--print-dirs"], capture_output=True, text=True, check=True
    ).stdout.split()
    return Path(out[0]), Path(out[1]), Path(out[2]), Path(out[3]), Path(out[4])


def _candidates(name: str, cache_dir: Path) -> list[Path]:
    paths = []
    if assets := os.environ.get("KUBEBUILDER_ASSETS"):
        paths.append(Path(assets) / name)
    if on_path := shutil.which(name):
        paths.append(Path(on_path))
    paths.append(cache_dir / name)
    return [p for p in paths if p.is_file() and os.access(p, os.X_OK)]


@functools.cache
def _version(path: Path) -> str:
    """What the binary says about its version ('' if it cannot say)."""
    flag = ["version", "--client"] if path.name == "kubectl" else ["--version"]
    try:
        done = subprocess.run([str(path), *flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
